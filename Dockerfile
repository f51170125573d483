# Build stage: compile authd. protox compiles the .proto files in Rust, so no
# protoc is needed. benches/ is there because Cargo.toml names its benchmark,
# and tools/ because it holds a workspace member (the load tool, which the
# image does not build): cargo refuses a manifest whose targets or members
# are missing.
# (scripts/check-container.sh checks this context without a Docker engine.)
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY benches benches
COPY tools tools
COPY proto proto
COPY migrations migrations
COPY src src
RUN cargo build --release --locked

# Runtime stage: the binary alone, as an unprivileged user. Migrations are
# embedded in the binary and applied at start-up.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin authd \
    && install -d -o authd -g authd -m 0700 /var/lib/authd
COPY --from=build /src/target/release/authd /usr/local/bin/authd
USER authd
# The key that seals the JWT signing keys in PostgreSQL: made on first
# start, kept on a volume, the same for every replica (give each the file,
# or AUTHD_KEY_ENCRYPTION_KEY). Without it the signing keys do not open.
VOLUME /var/lib/authd
ENV AUTHD_GRPC_ADDR=0.0.0.0:50051 \
    AUTHD_HTTP_ADDR=0.0.0.0:8080 \
    AUTHD_KEY_ENCRYPTION_KEY_FILE=/var/lib/authd/key-encryption.key
EXPOSE 50051 8080
HEALTHCHECK --interval=10s --timeout=6s --start-period=20s CMD ["authd", "healthcheck"]
ENTRYPOINT ["authd"]
CMD ["serve"]

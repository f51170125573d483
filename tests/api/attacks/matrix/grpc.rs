//! The gRPC half: every RPC the compiled descriptor set declares (so an
//! RPC added later is covered without editing this file), and the standard
//! health and reflection services served beside them.
use std::time::{Duration, Instant};

use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage, Value,
};
use tonic::Code;
use tonic::codegen::http;

use super::*;

/// Whether a status is a server's failure rather than an answer.
/// UNIMPLEMENTED too: an RPC the descriptor set declares is served.
///
/// Not tried: bytes that are not UTF-8 in a string field. The message
/// does not decode, and tonic answers INTERNAL, as gRPC's status code
/// table prescribes for a request that does not parse.
fn is_failure(code: Code) -> bool {
    matches!(
        code,
        Code::Internal | Code::Unknown | Code::DataLoss | Code::Unavailable | Code::Unimplemented
    )
}

/// One RPC found in a descriptor set.
struct Rpc {
    path: String,
    input: MessageDescriptor,
    streaming: bool,
}

/// Every RPC of every service in these descriptor sets whose package
/// `wanted` accepts.
fn rpcs_of(descriptor_set: &[u8], wanted: impl Fn(&str) -> bool) -> Vec<Rpc> {
    let pool = DescriptorPool::decode(descriptor_set).expect("descriptor set decodes");
    pool.services()
        .filter(|s| wanted(s.package_name()))
        .flat_map(|service| {
            service
                .methods()
                .map(|m| Rpc {
                    path: format!("/{}/{}", service.full_name(), m.name()),
                    input: m.input(),
                    streaming: m.is_client_streaming() || m.is_server_streaming(),
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// authd's RPCs, and the standard health and reflection services served
/// beside them.
fn every_rpc() -> Vec<Rpc> {
    let mut rpcs = rpcs_of(authd::proto::FILE_DESCRIPTOR_SET, |p| p == "authd.v1");
    rpcs.extend(rpcs_of(tonic_health::pb::FILE_DESCRIPTOR_SET, |_| true));
    rpcs.extend(rpcs_of(
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        |_| true,
    ));
    rpcs.extend(rpcs_of(
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        |_| true,
    ));
    rpcs
}

/// A path to a string field, through nested messages.
#[derive(Clone)]
struct FieldPath(Vec<FieldDescriptor>);

impl FieldPath {
    fn name(&self) -> String {
        self.0
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(".")
    }

    fn is_list(&self) -> bool {
        self.0.last().is_some_and(|f| f.is_list())
    }
}

/// Every string field of `message`, nested messages' included (to a
/// depth that stops recursive types).
fn string_fields(message: &MessageDescriptor, prefix: &[FieldDescriptor]) -> Vec<FieldPath> {
    if prefix.len() >= 3 {
        return Vec::new();
    }
    let mut paths = Vec::new();
    for field in message.fields() {
        if field.is_map() {
            continue;
        }
        let mut path = prefix.to_vec();
        path.push(field.clone());
        match field.kind() {
            Kind::String => paths.push(FieldPath(path)),
            Kind::Message(inner) if !field.is_list() => {
                paths.extend(string_fields(&inner, &path));
            }
            _ => {}
        }
    }
    paths
}

/// Sets the field at `path` (creating the messages on the way) to `value`.
fn set(message: &mut DynamicMessage, path: &[FieldDescriptor], value: Value) {
    match path {
        [] => {}
        [field] => message.set_field(field, value),
        [field, rest @ ..] => {
            let inner = message.get_field_mut(field);
            if let Value::Message(inner) = inner {
                set(inner, rest, value);
            }
        }
    }
}

/// Fills each string field a plausible value is known for.
fn fill(plausible: &Plausible, message: &mut DynamicMessage) {
    let descriptor = message.descriptor();
    for field in descriptor.fields() {
        if field.kind() != Kind::String || field.containing_oneof().is_some() {
            continue;
        }
        let Some(value) = plausible.value(field.name()) else {
            continue;
        };
        let value = Value::String(value.into());
        if field.is_list() {
            message.set_field(&field, Value::List(vec![value]));
        } else {
            message.set_field(&field, value);
        }
    }
}

/// One raw gRPC call: the message encoded from its descriptor, to the
/// method's path. Streaming methods get one message and are judged by
/// their first answer.
async fn call(
    channel: &tonic::transport::Channel,
    rpc: &Rpc,
    message: DynamicMessage,
    bearer: Option<&str>,
) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unknown(format!("not ready: {e}")))?;
    let path: http::uri::PathAndQuery = rpc.path.parse().expect("path");
    let codec = tonic_prost::ProstCodec::<DynamicMessage, ()>::default();
    let mut metadata = tonic::metadata::MetadataMap::new();
    if let Some(token) = bearer {
        metadata.insert(
            "authorization",
            format!("Bearer {token}").parse().expect("metadata"),
        );
    }
    if rpc.streaming {
        let mut request = tonic::Request::new(futures::stream::iter([message]));
        *request.metadata_mut() = metadata;
        let mut stream = grpc.streaming(request, path, codec).await?.into_inner();
        stream.message().await?;
    } else {
        let mut request = tonic::Request::new(message);
        *request.metadata_mut() = metadata;
        grpc.unary(request, path, codec).await?;
    }
    Ok(())
}

/// The calls of one RPC: its plausible message, then each string field set
/// to each hostile value in turn (and repeated fields to many elements).
fn cases(rpc: &Rpc, plausible: &Plausible, values: &[Hostile]) -> Vec<(String, DynamicMessage)> {
    let fields = string_fields(&rpc.input, &[]);
    // Messages without a string field are still called, once.
    let mut cases: Vec<(String, DynamicMessage)> = Vec::new();
    let base = {
        let mut m = DynamicMessage::new(rpc.input.clone());
        fill(plausible, &mut m);
        m
    };
    cases.push(("plausible".into(), base.clone()));
    for field in &fields {
        for hostile in values {
            let mut m = base.clone();
            let v = Value::String(hostile.value.clone());
            let v = if field.is_list() {
                Value::List(vec![v])
            } else {
                v
            };
            set(&mut m, &field.0, v);
            cases.push((format!("{} = {}", field.name(), hostile.name), m));
        }
        if field.is_list() {
            let mut m = base.clone();
            set(
                &mut m,
                &field.0,
                Value::List(vec![Value::String("x".into()); MANY]),
            );
            cases.push((format!("{} = {MANY} elements", field.name()), m));
            let mut m = base.clone();
            set(
                &mut m,
                &field.0,
                Value::List(vec![Value::String("a\0%zz\u{202e}".into()); MANY]),
            );
            cases.push((format!("{} = {MANY} hostile elements", field.name()), m));
        }
    }
    cases
}

#[tokio::test]
async fn every_rpc_answers_hostile_values_in_every_string_field_without_failing() {
    let app = spawn_app_with({
        let mut o = TestOptions::default();
        o.service.rate_limits = authd::service::throttle::RateLimits::off();
        o
    })
    .await;
    let user = app.create_user("matrix", false).await;
    let client = app.register_app(&[OOB], "read write profile").await;
    let token = app
        .user_token(&user, &client, "read write profile")
        .await
        .access_token;
    // An admin round too, which gets past authorization to the handlers;
    // its client is one it may delete (Admin.DeleteApp's plausible case).
    let admin = app.create_user("matrixroot", true).await;
    let console = app.register_app(&[OOB], "admin:read admin:write").await;
    let admin_token = app
        .user_token(&admin, &console, "admin:read admin:write")
        .await
        .access_token;
    let victim = app.register_app(&[OOB], "read write profile").await;
    let mut plausible = Plausible {
        client_id: client.client_id.clone(),
        client_secret: client.client_secret.clone(),
        session: user.session.clone(),
        access_token: token.clone(),
        email: email("matrix"),
    };
    let rounds = [
        ("no credentials", None, &client),
        ("non-admin token", Some(token.as_str()), &client),
        ("admin token", Some(admin_token.as_str()), &victim),
    ];

    let rpcs = every_rpc();
    // Every service authd serves is in the descriptor set, and walked.
    for service in authd::grpc::SERVICE_NAMES.iter() {
        assert!(
            rpcs.iter()
                .any(|r| r.path.starts_with(&format!("/{service}/"))),
            "{service} has no RPC in the descriptor set"
        );
    }
    for standard in [
        "/grpc.health.v1.Health/",
        "/grpc.reflection.v1.ServerReflection/",
        "/grpc.reflection.v1alpha.ServerReflection/",
    ] {
        assert!(
            rpcs.iter().any(|r| r.path.starts_with(standard)),
            "{standard}"
        );
    }

    let values = hostile_values();
    let mut failures = Vec::new();
    let mut calls = 0usize;
    let mut slowest = (Duration::ZERO, String::new());
    let started = Instant::now();
    for rpc in &rpcs {
        for (who, bearer, client) in &rounds {
            // A session of its own for each round of each RPC: Logout's
            // plausible case ends the one it is given.
            plausible.session = app
                .login(&email("matrix"), PASSWORD)
                .await
                .expect("login")
                .session;
            plausible.client_id = client.client_id.clone();
            plausible.client_secret = client.client_secret.clone();
            for (case, message) in cases(rpc, &plausible, &values) {
                let bearer = *bearer;
                let call_started = Instant::now();
                let answer = tokio::time::timeout(
                    CALL_BOUND,
                    call(&app.channel, rpc, message.clone(), bearer),
                )
                .await;
                let elapsed = call_started.elapsed();
                calls += 1;
                if elapsed > slowest.0 {
                    slowest = (elapsed, format!("{} {case} ({who})", rpc.path));
                }
                match answer {
                    Err(_) => failures.push(format!(
                        "{} {case} ({who}): no answer within {CALL_BOUND:?}",
                        rpc.path
                    )),
                    Ok(Err(status)) if is_failure(status.code()) => failures.push(format!(
                        "{} {case} ({who}): {:?} {}",
                        rpc.path,
                        status.code(),
                        status.message()
                    )),
                    Ok(_) => {}
                }
            }
        }
    }
    eprintln!(
        "gRPC matrix: {} RPCs, {} values, {calls} calls in {:?}; slowest {:?}: {}",
        rpcs.len(),
        values.len(),
        started.elapsed(),
        slowest.0,
        slowest.1
    );
    assert!(rpcs.len() > 20, "only {} RPCs found", rpcs.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

//! The fuzz targets' checks (fuzz/src/targets/), run on every input the
//! fuzzer has kept (fuzz/corpus/) and every hand-written seed (fuzz/seeds/),
//! and on a bounded number of mutations of each: what libFuzzer would try
//! first, without its toolchain or build. `fuzz/run.sh` still does the long
//! runs; this keeps every input they found checked by `cargo test`.
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod authd_fuzz;

/// Mutations tried of each kept input.
const MUTATIONS_PER_INPUT: usize = 64;
/// However many inputs there are, the mutations stop after this long.
const MUTATION_BUDGET: Duration = Duration::from_secs(20);
/// Bytes a mutation inserts: the separators and escapes the parsers split on.
const DICTIONARY: &[&[u8]] = &[
    b"&", b"=", b"%", b"%2", b"%00", b"+", b":", b" ", b"\"", b"[]", b"\n", b"\r\n", b"\0",
    b"\xff", b"\xc3", b"{", b"}", b",", b"--", b"/", b"#", b"?", b"@", b"read", b"admin",
];

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut found = Vec::new();
    for dir in ["corpus", "seeds"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                found.push((path, bytes));
            }
        }
    }
    found.sort();
    found
}

/// A small xorshift generator: the same mutations on every run, so a
/// failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    match rng.below(6) {
        0 if !out.is_empty() => {
            let i = rng.below(out.len());
            out[i] ^= 1 << rng.below(8);
        }
        1 if !out.is_empty() => {
            let start = rng.below(out.len());
            let end = (start + 1 + rng.below(8)).min(out.len());
            out.drain(start..end);
        }
        2 => {
            let at = rng.below(out.len() + 1);
            let word = DICTIONARY[rng.below(DICTIONARY.len())];
            out.splice(at..at, word.iter().copied());
        }
        3 if !out.is_empty() => {
            let start = rng.below(out.len());
            let end = (start + 1 + rng.below(32)).min(out.len());
            let chunk = out[start..end].to_vec();
            out.splice(end..end, chunk);
        }
        4 => {
            // Splice: the head of this input, the tail of another.
            let cut = rng.below(out.len() + 1);
            let from = rng.below(other.len() + 1);
            out.truncate(cut);
            out.extend_from_slice(&other[from..]);
        }
        _ => {
            let at = rng.below(out.len() + 1);
            out.insert(at, rng.next() as u8);
        }
    }
    out
}

/// Runs `check` on `data`; a panic is reported with what was checked and
/// the input kept under target/ for `fuzz/run.sh`-style reproduction.
fn run_one(target: &str, check: fn(&[u8]), data: &[u8], what: &str, failures: &mut Vec<String>) {
    if catch_unwind(AssertUnwindSafe(|| check(data))).is_err() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-corpus-failures");
        std::fs::create_dir_all(&dir).unwrap();
        let kept = dir.join(format!("{target}-{}", failures.len()));
        std::fs::write(&kept, data).unwrap();
        failures.push(format!(
            "{target}: {what} (input kept at {}; reproduce: cd fuzz && cargo fuzz run {target} {})",
            kept.display(),
            kept.display()
        ));
    }
}

#[test]
fn every_kept_input_and_seed_passes_its_targets_checks() {
    let mut failures = Vec::new();
    for &(target, check) in authd_fuzz::targets::ALL {
        let inputs = inputs(target);
        assert!(
            !inputs.is_empty(),
            "{target} has no corpus or seeds under fuzz/: a renamed folder would test nothing"
        );
        for (path, bytes) in &inputs {
            run_one(
                target,
                check,
                bytes,
                &path.display().to_string(),
                &mut failures,
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn mutations_of_the_kept_inputs_pass_their_targets_checks() {
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut tried = 0usize;
    'targets: for (n, &(target, check)) in authd_fuzz::targets::ALL.iter().enumerate() {
        let inputs = inputs(target);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (n as u64 + 1));
        for (i, (path, bytes)) in inputs.iter().enumerate() {
            let other = &inputs[(i + 1) % inputs.len()].1;
            for m in 0..MUTATIONS_PER_INPUT {
                if started.elapsed() > MUTATION_BUDGET {
                    break 'targets;
                }
                let mutant = mutate(&mut rng, bytes, other);
                let what = format!("mutation {m} of {}", path.display());
                run_one(target, check, &mutant, &what, &mut failures);
                tried += 1;
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(tried > 0, "no mutation was tried");
    eprintln!("{tried} mutations checked in {:?}", started.elapsed());
}

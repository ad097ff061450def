//! A short smoke run of every fuzz target, as part of `make test` (no fuzzing toolchain
//! needed): each corpus file under `fuzz/corpus/<target>` is replayed, then mutations of them
//! (byte flips, inserts, deletes, splices with dictionary tokens) from a fixed seed. The
//! coverage-guided runs are `make fuzz`.

use std::path::Path;

use wasmgate_harness::fuzz_targets::{fuzz_dir, TARGETS};

/// Generated inputs per target beyond the corpus: about 15 s in all in a dev build.
fn generated(target: &str) -> usize {
    match target {
        "hostsim_abi" | "differential" => 3_000,
        "config" => 20_000,
        _ => 50_000,
    }
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = fuzz_dir().join("corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// libFuzzer's dictionary format: one `"token"` a line, `\xNN` escapes, `#` comments.
fn dictionary(target: &str) -> Vec<Vec<u8>> {
    let path = fuzz_dir().join("dict").join(format!("{target}.dict"));
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let start = l.find('"')?;
            let end = l.rfind('"')?;
            (!l.starts_with('#') && end > start).then(|| unescape(&l[start + 1..end]))
        })
        .collect()
}

fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
            if let Some(v) = s
                .get(i + 2..i + 4)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        if b[i] == b'\\' && i + 1 < b.len() {
            out.push(b[i + 1]);
            i += 2;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, corpus: &[Vec<u8>], dict: &[Vec<u8>]) {
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(input.len() + 1);
        match rng.below(6) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 => input.insert(at, rng.next_u64() as u8),
            2 if at < input.len() => {
                let n = rng.below(input.len() - at + 1);
                input.drain(at..at + n);
            }
            3 if !dict.is_empty() => {
                let tok = &dict[rng.below(dict.len())];
                input.splice(at..at, tok.iter().copied());
            }
            4 if !corpus.is_empty() => {
                let other = &corpus[rng.below(corpus.len())];
                let from = rng.below(other.len() + 1);
                input.truncate(at);
                input.extend_from_slice(&other[from..]);
            }
            _ => {
                let i = rng.below(input.len() + 1);
                let n = rng.below(64);
                input.splice(i..i, std::iter::repeat_n(rng.next_u64() as u8, n));
            }
        }
    }
}

#[test]
fn every_fuzz_target_survives_its_corpus_and_mutations_of_it() {
    assert!(
        Path::new(&fuzz_dir().join("corpus")).is_dir(),
        "no corpora under {}",
        fuzz_dir().display()
    );
    for (name, run) in TARGETS {
        let corpus = corpus(name);
        assert!(!corpus.is_empty(), "{name}: empty corpus");
        let dict = dictionary(name);
        let started = std::time::Instant::now();
        for input in &corpus {
            run(input);
        }
        let mut rng = Rng(0x5eed ^ name.len() as u64);
        for _ in 0..generated(name) {
            let mut input = corpus[rng.below(corpus.len())].clone();
            mutate(&mut rng, &mut input, &corpus, &dict);
            run(&input);
        }
        println!(
            "{name}: {} corpus + {} generated inputs in {:?}",
            corpus.len(),
            generated(name),
            started.elapsed()
        );
    }
}

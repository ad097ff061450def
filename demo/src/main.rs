//! `make demo`: the seed's examples generated, running in Envoy with local backends standing
//! in for clusters, with traffic and where it went.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::time::Duration;

use wasmgate_harness::deploy::{deploy, Member};
use wasmgate_harness::live_reconfig::{Live, Outcome, Route, State, Traffic};
use wasmgate_harness::paths::examples;
use wasmgate_harness::s3store::S3Store;
use wasmgate_harness::{get, request, Backend, Scratch, TcpBackend};

fn show_inputs(files: &[std::path::PathBuf]) {
    println!("generated from:");
    let root = examples();
    for f in files {
        println!(
            "  configs/examples/{}",
            f.strip_prefix(&root).unwrap_or(f).display()
        );
    }
}

fn row(request: &str, status: &str, outcome: &str) {
    println!("  {request:<40} {status:>6}  {outcome}");
}

fn virtual_host() -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "== The seed's VirtualHost: host/path rules, a TCP route, status codes, and a storage \
         bucket beside them"
    );
    let foo_app = Backend::start("foo-app")?;
    let tcp_app = TcpBackend::start("tcp-app")?;
    // A real S3-compatible store (s3s-fs) on loopback holds the bucket's objects.
    let store = S3Store::start("demo-store", None)?;
    for (key, body) in [
        ("site/index.html", "<h1>foo assets</h1>\n"),
        ("site/app.js", "console.log('foo');\n"),
    ] {
        store.put("foo-assets", key, body.as_bytes())?;
    }
    let seed = examples().join("seed");
    let bucket_example = examples().join("buckets/virtualhost.yaml");
    let mut inputs = vec![
        seed.join("services.yaml"),
        seed.join("virtualhost.yaml"),
        seed.join("status-code.yaml"),
        bucket_example.clone(),
    ];
    show_inputs(&inputs);
    // The example names the store as localhost:9000; point it at the one just started.
    let scratch = Scratch::new("demo-bucket")?;
    let bucket_yaml = std::fs::read_to_string(&bucket_example)?
        .replace("http://localhost:9000", &store.endpoint());
    if let Some(last) = inputs.last_mut() {
        *last = scratch.write("bucket.yaml", &bucket_yaml)?;
    }
    println!("s3s-fs store: {}", store.endpoint());
    let d = deploy(
        "demo",
        &inputs,
        &[Member {
            name: "local".into(),
            labels: vec![("region".into(), "local".into())],
            endpoints: vec![
                ("foo-app".into(), 80, foo_app.endpoint()),
                ("tcp-app".into(), 9000, tcp_app.endpoint()),
            ],
        }],
        &[9000],
    )?;
    println!(
        "envoy: http on {}, tcp port 9000 on {}",
        d.http, d.ports[&9000]
    );
    row("request", "status", "outcome");
    for (host, path) in [
        ("foo.com", "/"),
        ("foo.com", "/cart/checkout?step=2"),
        ("FOO.COM:10000", "/"),
        ("status.foo.com", "/teapot"),
        ("status.foo.com", "/anything"),
        ("bar.com", "/"),
    ] {
        let r = get(d.http, host, path)?;
        let outcome = match r.backend() {
            Some(b) => format!("backend {b}"),
            None => format!("local reply {:?}", r.text().trim_end()),
        };
        row(
            &format!("GET {host}{path}"),
            &r.status.to_string(),
            &outcome,
        );
    }
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/app.js"),
        ("GET", "/products/42"),
        ("GET", "/missing.css"),
        ("PUT", "/app.js"),
    ] {
        let r = request(d.http, method, "assets.foo.com", path, &[])?;
        let outcome = match (r.status, r.header("allow")) {
            (405, Some(allow)) => format!("local reply, allow: {allow}"),
            (200, _) => format!("bucket foo-assets: {:?}", r.text().trim_end()),
            _ => format!("{:?}", r.text().trim_end()),
        };
        row(
            &format!("{method} assets.foo.com{path}"),
            &r.status.to_string(),
            &outcome,
        );
    }
    let conn = TcpStream::connect(d.ports[&9000])?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut greeting = String::new();
    BufReader::new(conn).read_line(&mut greeting)?;
    row(
        "TCP connect :9000",
        "-",
        &format!("backend {}", greeting.trim_end()),
    );
    Ok(())
}

fn multi_cluster() -> Result<(), Box<dyn std::error::Error>> {
    println!();
    println!("== The seed's MultiClusterIngress + MultiClusterService (clusters with region: us)");
    let clusters = [("us-east", "us"), ("us-west", "us"), ("eu-west", "eu")];
    let backends: Vec<Backend> = clusters
        .iter()
        .map(|(n, _)| Backend::start(n))
        .collect::<Result<_, _>>()?;
    let ex = examples().join("seed-multicluster");
    let inputs = [
        ex.join("multiclusterservice.yaml"),
        ex.join("multiclusteringress.yaml"),
    ];
    show_inputs(&inputs);
    let members: Vec<Member> = clusters
        .iter()
        .zip(&backends)
        .map(|((name, region), b)| Member {
            name: name.to_string(),
            labels: vec![("region".into(), region.to_string())],
            endpoints: vec![("my-mc-service".into(), 80, b.endpoint())],
        })
        .collect();
    let d = deploy("demo-mc", &inputs, &members, &[])?;
    println!(
        "inventory: us-east (us), us-west (us), eu-west (eu); envoy: http on {}",
        d.http
    );
    let tally = |n: usize| -> Result<BTreeMap<String, u32>, Box<dyn std::error::Error>> {
        let mut seen = BTreeMap::new();
        for _ in 0..n {
            let r = get(d.http, "foo.bar.com", "/")?;
            *seen
                .entry(
                    r.backend()
                        .unwrap_or_else(|| format!("status {}", r.status)),
                )
                .or_insert(0) += 1;
        }
        Ok(seen)
    };
    row("100 x GET foo.bar.com/", "", &format!("{:?}", tally(100)?));
    let r = get(d.http, "other.example", "/")?;
    row(
        "GET other.example/ (default backend)",
        &r.status.to_string(),
        &format!("backend {}", r.backend().unwrap_or_default()),
    );
    Ok(())
}

/// Where the traffic of one phase went, and how much of it failed.
fn spread(outcomes: &[Outcome]) -> String {
    let mut by: BTreeMap<String, u64> = BTreeMap::new();
    let mut failed = 0;
    for o in outcomes {
        match (&o.backend, o.status) {
            (Some(b), 200) => *by.entry(b.clone()).or_default() += 1,
            _ => failed += 1,
        }
    }
    format!("{} requests {by:?}, {failed} failed", outcomes.len())
}

fn live_change() -> Result<(), Box<dyn std::error::Error>> {
    println!();
    println!("== A live change: member cluster c3 removed from `shop` while traffic flows");
    let mut state = State {
        routes: vec![Route::new("shop.test", "/", &[("shop", 1)])],
        shop_members: vec!["c2".into(), "c3".into(), "c4".into()],
        invalid: false,
    };
    let live = Live::start("demo-live", &state, 2)?;
    println!(
        "wasmgate generate --xds {} --watch; envoy -c {}/envoy.yaml (2 workers)",
        live.xds_dir.display(),
        live.xds_dir.display()
    );
    let keys: Vec<String> = (0..40).map(|i| format!("user-{i}")).collect();
    let traffic = Traffic::start(live.http, "shop.test", &keys, 2, 100);
    std::thread::sleep(Duration::from_secs(2));
    let before = traffic.snapshot();
    println!(
        "  before, 2 s, 40 users by x-user affinity: {}",
        spread(&before)
    );
    state.shop_members.retain(|m| m != "c3");
    live.write(&state)?;
    for line in live
        .watcher
        .lines_until(Duration::from_secs(3), |l| l.starts_with("version"))
    {
        println!("  watcher: {line}");
    }
    std::thread::sleep(Duration::from_secs(2));
    let all = traffic.finish();
    let after: Vec<Outcome> = all.iter().skip(before.len()).cloned().collect();
    println!("  during and after the change, 2 s: {}", spread(&after));
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    virtual_host()?;
    multi_cluster()?;
    live_change()
}

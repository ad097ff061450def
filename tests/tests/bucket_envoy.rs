//! Storage-bucket backends end to end: the generator's config in a real Envoy, in front of
//! real S3-compatible stores (s3s-fs): a public one, and a private one that checks SigV4,
//! signed by Envoy's own `aws_request_signing` filter on the bucket's cluster with
//! credentials from a file only Envoy reads.

use wasmgate_harness::deploy::deploy;
use wasmgate_harness::s3store::S3Store;
use wasmgate_harness::{request, request_raw, Scratch};

const ACCESS_KEY: &str = "AKWASMGATETEST";
const SECRET_KEY: &str = "wasmgate-test-secret";

const INDEX: &str = "<h1>site index</h1>\n";
const DOCS: &str = "<h1>docs index</h1>\n";
const APP: &str = "console.log('app');\n";
const SECRET: &str = "outside the prefix\n";
const REPORT: &str = "private report\n";

fn inputs(public: &S3Store, private: &S3Store, credentials: &std::path::Path) -> String {
    format!(
        r#"kind: VirtualHost
metadata: {{name: buckets}}
spec:
  routes:
    - http:
        host: www.test
        rules:
          - path: /
            backend:
              bucket:
                name: site
                endpoint: {public}
                prefix: www
                spaFallback: index.html
                notFoundBody: "no such page\n"
    - http:
        host: private.test
        rules:
          - path: /
            backend:
              bucket:
                name: vault
                endpoint: {private}
                addressing: virtualHosted
                region: eu-west-1
                signing: {{credentialsFile: {creds}, profile: wasmgate}}
    - http:
        host: env.test
        rules:
          - path: /
            backend:
              bucket:
                name: vault-env
                endpoint: {private}
                signing: {{}}
"#,
        public = public.endpoint(),
        private = private.endpoint(),
        creds = credentials.display(),
    )
}

struct Case {
    name: &'static str,
    host: &'static str,
    method: &'static str,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    status: u16,
    body: Option<&'static str>,
    response_headers: &'static [(&'static str, &'static str)],
}

const fn get(name: &'static str, host: &'static str, path: &'static str, status: u16) -> Case {
    Case {
        name,
        host,
        method: "GET",
        path,
        headers: &[],
        status,
        body: None,
        response_headers: &[],
    }
}

#[test]
fn buckets_serve_objects_read_only_through_envoy_with_signing_for_the_private_one() {
    let public = S3Store::start("bucket-public", None).unwrap();
    let private = S3Store::start("bucket-private", Some((ACCESS_KEY, SECRET_KEY))).unwrap();
    for (key, body) in [
        ("www/index.html", INDEX),
        ("www/docs/index.html", DOCS),
        ("www/app.js", APP),
        ("secret.txt", SECRET),
    ] {
        public.put("site", key, body.as_bytes()).unwrap();
    }
    private
        .put("vault", "report.txt", REPORT.as_bytes())
        .unwrap();
    private
        .put("vault", "index.html", INDEX.as_bytes())
        .unwrap();
    private
        .put("vault-env", "report.txt", REPORT.as_bytes())
        .unwrap();
    // `signing: {}` reads Envoy's environment, which Envoy inherits from this process (the
    // only test in this binary, so no other test sees these).
    std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);

    let scratch = Scratch::new("bucket-inputs").unwrap();
    let creds = scratch
        .write(
            "aws-credentials",
            &format!(
                "[wasmgate]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
            ),
        )
        .unwrap();
    let vh = scratch
        .write("buckets.yaml", &inputs(&public, &private, &creds))
        .unwrap();
    let d = deploy("bucket-envoy", &[vh], &[], &[]).unwrap();
    // The credentials reach Envoy's signing filter by file name only.
    let filter_configs = serde_json::to_string(&d.output.router).unwrap();
    assert!(!filter_configs.contains(SECRET_KEY) && !filter_configs.contains(ACCESS_KEY));
    let envoy_text = std::fs::read_to_string(&d.config_path).unwrap();
    assert!(!envoy_text.contains(SECRET_KEY));

    let cases = [
        Case {
            body: Some(INDEX),
            ..get(
                "the root asks for the index document under the prefix",
                "www.test",
                "/",
                200,
            )
        },
        Case {
            body: Some(DOCS),
            ..get(
                "a folder path asks for its index document",
                "www.test",
                "/docs/",
                200,
            )
        },
        Case {
            body: Some(APP),
            ..get("an object is served as stored", "www.test", "/app.js", 200)
        },
        Case {
            body: Some(INDEX),
            ..get(
                "a path without a file extension gets the SPA fallback",
                "www.test",
                "/users/42",
                200,
            )
        },
        Case {
            method: "HEAD",
            body: Some(""),
            response_headers: &[("content-length", "20")],
            ..get(
                "HEAD answers the object's headers without its body",
                "www.test",
                "/app.js",
                200,
            )
        },
        Case {
            headers: &[("range", "bytes=0-6")],
            body: Some("console"),
            response_headers: &[("content-range", "bytes 0-6/20")],
            ..get(
                "a range request is passed through and answered 206",
                "www.test",
                "/app.js",
                206,
            )
        },
        Case {
            method: "PUT",
            response_headers: &[("allow", "GET, HEAD")],
            ..get(
                "a write answers 405 with the methods allowed",
                "www.test",
                "/app.js",
                405,
            )
        },
        Case {
            method: "DELETE",
            ..get("a delete answers 405", "www.test", "/app.js", 405)
        },
        Case {
            body: Some("no such page\n"),
            ..get(
                "a missing key answers 404 with the custom body",
                "www.test",
                "/missing.js",
                404,
            )
        },
        Case {
            body: Some(REPORT),
            ..get(
                "a private bucket is read through Envoy's signature",
                "private.test",
                "/report.txt",
                200,
            )
        },
        Case {
            body: Some(INDEX),
            ..get(
                "a private virtual-hosted bucket serves its index",
                "private.test",
                "/",
                200,
            )
        },
        Case {
            headers: &[(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKEVIL/x, Signature=00",
            )],
            body: Some(REPORT),
            ..get(
                "a client's own authorization never reaches the store",
                "private.test",
                "/report.txt",
                200,
            )
        },
        Case {
            body: Some(REPORT),
            ..get(
                "a private bucket is signed with credentials from Envoy's environment",
                "env.test",
                "/report.txt",
                200,
            )
        },
        Case {
            body: Some("not found\n"),
            ..get(
                "a private bucket's missing key answers 404",
                "private.test",
                "/nope.txt",
                404,
            )
        },
    ];
    let mut failures = Vec::new();
    for c in &cases {
        let headers: Vec<(&str, &[u8])> =
            c.headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        let r = match request(d.http, c.method, c.host, c.path, &headers) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{}: {e}", c.name));
                continue;
            }
        };
        let mut wrong = Vec::new();
        if r.status != c.status {
            wrong.push(format!("status {} (want {})", r.status, c.status));
        }
        if let Some(b) = c.body {
            if r.text() != b {
                wrong.push(format!("body {:?} (want {b:?})", r.text()));
            }
        }
        for (n, v) in c.response_headers {
            if r.header(n) != Some(*v) {
                wrong.push(format!("{n}: {:?} (want {v:?})", r.header(n)));
            }
        }
        if r.text().contains("<Error>") || r.header("x-amz-request-id").is_some() {
            wrong.push("the store's own error or ids reached the client".into());
        }
        if !wrong.is_empty() {
            failures.push(format!("{}: {}", c.name, wrong.join("; ")));
        }
    }
    // Paths that try to climb out of the prefix, sent byte for byte. Envoy's own path
    // normalization (the generated listener turns it on) resolves `..` and redirects
    // escaped slashes before the router; whatever reaches the router is then refused (its
    // native table covers what a host without normalization would pass). The key outside
    // the prefix is never served.
    for (path, status) in [
        ("/../secret.txt", 404),
        ("/docs/../../secret.txt", 404),
        ("/%2e%2e/secret.txt", 404),
        ("/%2E%2E/%2e%2e/secret.txt", 404),
        ("/..%2Fsecret.txt", 307),
        ("/docs/%2e%2e%2f%2e%2e%2fsecret.txt", 307),
    ] {
        let raw = format!("GET {path} HTTP/1.1\r\nhost: www.test\r\nconnection: close\r\n\r\n");
        let r = request_raw(d.http, raw.as_bytes()).unwrap();
        if r.text().contains(SECRET.trim_end()) || r.status != status {
            failures.push(format!(
                "{path}: {} {:?} (want {status}, never the key outside the prefix)",
                r.status,
                r.text()
            ));
        }
        // Following a redirect lands on a normalized path under the prefix.
        if let Some(location) = r.header("location") {
            let target = location.split_once("www.test").map_or(location, |(_, p)| p);
            let again = request(d.http, "GET", "www.test", target, &[]).unwrap();
            if again.text().contains(SECRET.trim_end()) || again.status == 200 {
                failures.push(format!(
                    "{path} -> {location}: {} {:?}",
                    again.status,
                    again.text()
                ));
            }
        }
    }
    // The private store really checks: the same object unsigned is refused.
    let direct = request(private.addr, "GET", "vault.localhost", "/report.txt", &[]).unwrap();
    if direct.status != 403 {
        failures.push(format!(
            "the private store answered {} unsigned",
            direct.status
        ));
    }
    assert!(
        failures.is_empty(),
        "{}\n--- envoy log tail ---\n{}\n--- private store log ---\n{}",
        failures.join("\n"),
        d.envoy
            .log_text()
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .join("\n"),
        private
            .log_text()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n"),
    );
}

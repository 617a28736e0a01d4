//! Real receivers of notifications started by the tests: an HTTP server that records every request
//! (answering 500 to the first `fail_first`), and Debian's aiosmtpd (`python3-aiosmtpd`) as the SMTP
//! server, with STARTTLS on a certificate made for the test, whose output the test reads.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use tokio::io::AsyncReadExt;

/// One request the webhook receiver got.
#[derive(Clone, Debug)]
pub struct Hook {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Hook {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// An HTTP server on 127.0.0.1 recording every POST.
pub struct Webhook {
    pub url: String,
    pub got: Arc<Mutex<Vec<Hook>>>,
    pub attempts: Arc<Mutex<u32>>,
}

impl Webhook {
    pub async fn start(fail_first: u32) -> Webhook {
        let got: Arc<Mutex<Vec<Hook>>> = Arc::default();
        let attempts: Arc<Mutex<u32>> = Arc::default();
        let (g, a) = (got.clone(), attempts.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (g, a) = (g.clone(), a.clone());
                async move {
                    let n = {
                        let mut a = a.lock().unwrap();
                        *a += 1;
                        *a
                    };
                    if n <= fail_first {
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    g.lock().unwrap().push(Hook { headers, body });
                    StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Webhook { url, got, attempts }
    }

    /// Every event of every request, in order.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .flat_map(|h| h.json()["events"].as_array().unwrap().clone())
            .collect()
    }
}

/// aiosmtpd with STARTTLS, printing every message it gets.
pub struct Smtp {
    pub port: u16,
    pub ca_file: std::path::PathBuf,
    pub out: Arc<Mutex<String>>,
    child: tokio::process::Child,
}

impl Smtp {
    pub async fn start(dir: &std::path::Path) -> Smtp {
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
        let (cert_file, key_file) = (dir.join("smtp.crt"), dir.join("smtp.key"));
        std::fs::write(&cert_file, cert.cert.pem()).unwrap();
        std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut child = tokio::process::Command::new("/usr/bin/python3")
            .args([
                "-u",
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
            ])
            .arg("--tlscert")
            .arg(&cert_file)
            .arg("--tlskey")
            .arg(&key_file)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("aiosmtpd (apt-get install python3-aiosmtpd)");
        let mut stdout = child.stdout.take().unwrap();
        let out: Arc<Mutex<String>> = Arc::default();
        let o = out.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                o.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        jobsched_testkit::wait_for("aiosmtpd to listen", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        Smtp {
            port,
            ca_file: cert_file,
            out,
            child,
        }
    }

    /// What it printed so far.
    pub fn text(&self) -> String {
        self.out.lock().unwrap().clone()
    }
}

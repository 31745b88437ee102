//! A local webhook receiver: an HTTP server on 127.0.0.1 that records every request and
//! answers each with the next planned status (then 200), optionally after holding it.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Received {
    /// Lower-cased names.
    pub headers: HashMap<String, String>,
    pub body: String,
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// What the receiver answers: a status, after holding the request this long.
pub type Answer = (u16, Duration);

pub struct Receiver {
    pub url: String,
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    plan: Arc<Mutex<VecDeque<Answer>>>,
}

impl Receiver {
    /// Answers the statuses in `plan` in order, then 200 to everything.
    pub fn start(plan: &[u16]) -> Receiver {
        Self::start_holding(
            &plan
                .iter()
                .map(|s| (*s, Duration::ZERO))
                .collect::<Vec<_>>(),
        )
    }

    pub fn start_holding(plan: &[Answer]) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let plan = Arc::new(Mutex::new(plan.iter().copied().collect::<VecDeque<_>>()));
        let (r, p) = (Arc::clone(&received), Arc::clone(&plan));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (r, p) = (Arc::clone(&r), Arc::clone(&p));
                std::thread::spawn(move || serve(stream, &r, &p));
            }
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            port,
            received,
            plan,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived; all of them.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        super::eventually(&format!("{n} webhook request(s)"), timeout, || {
            let got = self.received();
            (got.len() >= n).then_some(got)
        })
    }
}

fn serve(stream: TcpStream, received: &Mutex<Vec<Received>>, plan: &Mutex<VecDeque<Answer>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut headers = HashMap::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let (status, hold) = plan
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or((200, Duration::ZERO));
    received.lock().unwrap().push(Received {
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    });
    std::thread::sleep(hold);
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} Planned\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
}

//! A server that answers badly on purpose: it echoes the Authorization
//! header, streams an endless body, redirects, hands out ids with control
//! characters, or answers slowly. Each test says how it answers; every
//! request it receives is logged, so a test can assert what was (not) sent.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request as the server received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub method: String,
    /// The raw request target, exactly as sent (percent-encoding included).
    pub path: String,
    pub authorization: Option<String>,
    pub body: String,
}

pub enum Answer {
    /// Status, content type and body.
    Json(u16, String),
    /// Status and headers, no body.
    Head(u16, Vec<(String, String)>),
    /// 200 with a body that never ends.
    Endless,
    /// Waits, then answers.
    Slow(Duration, Box<Answer>),
}

pub fn json(status: u16, body: serde_json::Value) -> Answer {
    Answer::Json(status, body.to_string())
}

type Handler = dyn Fn(&Seen) -> Answer + Send + Sync;

pub struct Hostile {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Hostile {
    pub fn start(handler: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (log, handler) = (log.clone(), handler.clone());
                std::thread::spawn(move || serve(stream, &log, &*handler));
            }
        });
        Hostile { url, seen }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, log: &Mutex<Vec<Seen>>, handler: &Handler) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let (mut length, mut authorization) = (0usize, None);
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let v = v.trim().to_string();
            match k.to_ascii_lowercase().as_str() {
                "content-length" => length = v.parse().unwrap_or(0),
                "authorization" => authorization = Some(v),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let seen = Seen {
        method,
        path,
        authorization,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    log.lock().unwrap().push(seen.clone());
    respond(stream, handler(&seen));
}

fn respond(mut stream: TcpStream, answer: Answer) {
    match answer {
        Answer::Json(status, body) => {
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
        Answer::Head(status, headers) => {
            let mut text =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n");
            for (k, v) in headers {
                text.push_str(&format!("{k}: {v}\r\n"));
            }
            text.push_str("\r\n");
            let _ = stream.write_all(text.as_bytes());
        }
        Answer::Endless => {
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
            );
            let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "x".repeat(64 * 1024));
            while stream.write_all(chunk.as_bytes()).is_ok() {}
        }
        Answer::Slow(wait, then) => {
            std::thread::sleep(wait);
            respond(stream, *then);
        }
    }
}

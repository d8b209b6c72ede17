//! netpeer: the tokio peer of heddle's network benchmarks.
//!
//!   netpeer http PORT   minimal HTTP/1.1 "Hello, World!" responder
//!   netpeer echo PORT   echo server
//!
//! A `current_thread` runtime (one thread), one task per connection, on
//! tokio::net::TcpListener bound to 127.0.0.1. The HTTP responder reads
//! whatever arrives, counts the "\r\n\r\n" request terminators (so pipelined
//! requests work) and writes one fixed response per request; it parses
//! nothing else. scripts/lib/net_bench.sh runs it pinned to one cpu and loads
//! it with wrk or echo_load_client.
use std::net::SocketAddr;
use std::process::exit;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

/// Counts request terminators across reads: `matched` is how much of
/// "\r\n\r\n" the bytes seen so far end with.
struct TerminatorCounter {
    matched: u8,
}

impl TerminatorCounter {
    fn feed(&mut self, data: &[u8]) -> usize {
        let mut found = 0;
        for &c in data {
            self.matched = match (c, self.matched) {
                (b'\r', 2) => 3,
                (b'\r', _) => 1,
                (b'\n', 1) => 2,
                (b'\n', 3) => {
                    found += 1;
                    0
                }
                _ => 0,
            };
        }
        found
    }
}

async fn http_session(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut input = vec![0u8; 4096];
    let mut output: Vec<u8> = Vec::with_capacity(4096);
    let mut counter = TerminatorCounter { matched: 0 };
    loop {
        let n = match stream.read(&mut input).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let requests = counter.feed(&input[..n]);
        if requests == 0 {
            continue;
        }
        output.clear();
        for _ in 0..requests {
            output.extend_from_slice(RESPONSE);
        }
        if stream.write_all(&output).await.is_err() {
            return;
        }
    }
}

async fn echo_session(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

fn usage() -> ! {
    eprintln!("usage: netpeer http|echo PORT");
    exit(2);
}

async fn serve(http: bool, port: u16) -> std::io::Result<()> {
    let address: SocketAddr = ([127, 0, 0, 1], port).into();
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    // TcpListener::bind's backlog is 1024; 1,000 connections arrive at once.
    let listener = socket.listen(4096)?;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                if http {
                    tokio::spawn(http_session(stream));
                } else {
                    tokio::spawn(echo_session(stream));
                }
            }
            Err(e) => eprintln!("netpeer: accept: {e}"),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        usage();
    }
    let http = match args[1].as_str() {
        "http" => true,
        "echo" => false,
        _ => usage(),
    };
    let port: u16 = match args[2].parse() {
        Ok(p) if p > 0 => p,
        _ => usage(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("netpeer: runtime: {e}");
            exit(1);
        });
    if let Err(e) = runtime.block_on(serve(http, port)) {
        eprintln!("netpeer: {e}");
        exit(1);
    }
}

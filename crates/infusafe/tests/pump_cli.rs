//! `infusafe pump --protocol pcd`: the arguments each protocol needs, and the binary speaking MLLP to a listener
//! that refuses its device (an ACK AE): the pump stops with exit code 1 and says why.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;

fn pump(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_infusafe"))
        .arg("pump")
        .args(args)
        .env_remove("INFUSAFE_PUMP_TOKEN")
        .output()
        .expect("the binary runs")
}

fn refused(args: &[&str], says: &str) {
    let out = pump(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(says), "{args:?}: {stderr}");
}

#[test]
fn each_protocol_asks_for_what_it_needs() {
    refused(
        &[
            "--protocol",
            "pcd",
            "--server",
            "http://127.0.0.1:2575",
            "--device-id",
            "X",
        ],
        "HOST:PORT",
    );
    refused(
        &["--protocol", "pcd", "--server", "127.0.0.1:2575"],
        "--device-id",
    );
    refused(&["--server", "http://127.0.0.1:8080"], "--token");
    refused(
        &[
            "--server",
            "http://127.0.0.1:8080",
            "--token",
            "t",
            "--device-id",
            "X",
        ],
        "--device-id is for --protocol pcd",
    );
    refused(&["--server", "127.0.0.1:8080", "--token", "t"], "http://");
}

#[test]
fn a_pcd_pump_refused_by_the_server_stops_with_its_reason() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut deframer = pcd::Deframer::new(1024 * 1024);
        let mut buf = [0u8; 8192];
        loop {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "the pump closed before sending a whole message");
            if let Some(frame) = deframer.push(&buf[..n]).unwrap().into_iter().next() {
                let text = String::from_utf8(frame).unwrap();
                let m = pcd::Message::parse(&text).unwrap();
                let header = pcd::profile::parse_header(&m).unwrap();
                let r = pcd::Rejection::new(
                    pcd::AckCode::AE,
                    pcd::ErrorCode::UNKNOWN_KEY,
                    "no pump has this PCD device id",
                );
                let ack = pcd::ack(Some(&header), "a1", jiff::Timestamp::now(), Err(&r));
                stream.write_all(&pcd::frame(ack.as_bytes())).unwrap();
                return header.sender.id;
            }
        }
    });
    let out = pump(&[
        "--protocol",
        "pcd",
        "--server",
        &addr.to_string(),
        "--device-id",
        "0012210000000009",
        "--speed",
        "10",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no pump has this PCD device id"),
        "{stderr}"
    );
    assert_eq!(
        server.join().unwrap(),
        "0012210000000009",
        "MSH-3.2 carries the device id"
    );
}

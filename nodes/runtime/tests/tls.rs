//! TLS on a link (the off-vehicle one): two nodes with certificates signed by one CA talk over
//! `tls/localhost:PORT` with mutual authentication; a node whose certificate another CA signed
//! gets nothing; missing certificate files are named before anything opens. Certificates are
//! made with `openssl` for the test.

use reflex_msgs::reflex_msgs::VehicleState;
use reflex_runtime::transport::Tls;
use reflex_runtime::{InputOptions, Node, NodeOptions, TransportConfig};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl runs");
    assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// A CA and a certificate for `localhost` signed by it, in `dir`: `<name>-ca.pem`,
/// `<name>.pem`, `<name>.key`.
fn certificates(dir: &Path, name: &str) -> Tls {
    let ca = format!("{name}-ca");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={ca}"),
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
    Tls {
        root_ca_certificate: dir.join(format!("{ca}.pem")),
        certificate: dir.join(format!("{name}.pem")),
        private_key: dir.join(format!("{name}.key")),
        mutual: true,
    }
}

fn received_over(port: u16, sender_tls: Tls, receiver_tls: Tls) -> usize {
    let prefix = format!("tls{port}");
    let endpoint = format!("tls/localhost:{port}");
    let vehicle = TransportConfig {
        prefix: prefix.clone(),
        listen: vec![endpoint.clone()],
        shared_memory: false,
        tls: Some(sender_tls),
        ..TransportConfig::default()
    };
    let bench = TransportConfig {
        prefix,
        connect: vec![endpoint],
        shared_memory: false,
        tls: Some(receiver_tls),
        ..TransportConfig::default()
    };
    let sender = Node::new(NodeOptions::new("vehicle").transport(vehicle)).unwrap();
    let receiver = Node::new(NodeOptions::new("bench").transport(bench)).unwrap();
    let mut input =
        receiver.subscriber::<VehicleState>("/vehicle/state", InputOptions::default().capacity(256)).unwrap();
    let mut output = sender.publisher::<VehicleState>("/vehicle/state").unwrap();
    let mut got = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(4) {
        output.publish(&VehicleState { speed_mps: 8.0, ..Default::default() }).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        while input.recv().is_some() {
            got += 1;
        }
    }
    got
}

#[test]
fn mutual_tls_between_nodes_of_one_ca_and_nothing_for_a_stranger() {
    let dir = std::env::temp_dir().join(format!("reflex-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ours = certificates(&dir, "vehicle");
    let bench = Tls { certificate: dir.join("bench.pem"), private_key: dir.join("bench.key"), ..ours.clone() };
    // The bench's certificate, signed by the vehicle's CA.
    openssl(
        &dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "bench.key",
            "-out",
            "bench.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "bench.csr",
            "-CA",
            "vehicle-ca.pem",
            "-CAkey",
            "vehicle-ca.key",
            "-CAcreateserial",
            "-out",
            "bench.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
    let got = received_over(17771, ours.clone(), bench);
    assert!(got > 50, "messages over mutual TLS: {got}");

    let stranger = certificates(&dir, "stranger");
    let got = received_over(17772, ours.clone(), stranger);
    assert_eq!(got, 0, "a certificate from another CA must not get through");

    let missing = Tls { certificate: dir.join("nope.pem"), ..ours };
    let config = TransportConfig { tls: Some(missing), ..TransportConfig::default() };
    let error = config.validate().unwrap_err().to_string();
    assert!(error.contains("tls.certificate") && error.contains("nope.pem"), "{error}");
}

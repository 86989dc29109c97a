//! TLS on the off-vehicle link. Two nodes with certificates signed by one CA talk over
//! `tls/localhost:PORT` with mutual authentication; a node whose certificate another CA signed
//! gets nothing; missing certificate files are named before anything opens. And the whole
//! thing from a launch file: the launcher's `gateway` on TLS with access control, a bench
//! outside the launch receiving the arbiter's commands through it with its certificate and
//! credentials, and a stranger's certificate getting nothing. Certificates are made with
//! `openssl` for the test.

use reflex_msgs::reflex_msgs::{BrakeRequest, VehicleState};
use reflex_runtime::transport::{Security, Tls};
use reflex_runtime::{InputOptions, Mode, Node, NodeOptions, TransportConfig};
use reflex_testing::launch;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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

/// In a fresh folder: the vehicle's CA and certificate, the bench's certificate signed by the
/// same CA, and a stranger's from another CA.
fn fixture(name: &str) -> (PathBuf, Tls, Tls, Tls) {
    let dir = std::env::temp_dir().join(format!("reflex-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
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
    let stranger = certificates(&dir, "stranger");
    (dir, ours, bench, stranger)
}

#[test]
fn mutual_tls_between_nodes_of_one_ca_and_nothing_for_a_stranger() {
    let (dir, ours, bench, stranger) = fixture("tls");
    let got = received_over(17771, ours.clone(), bench);
    assert!(got > 50, "messages over mutual TLS: {got}");

    let got = received_over(17772, ours.clone(), stranger);
    assert_eq!(got, 0, "a certificate from another CA must not get through");

    let missing = Tls { certificate: dir.join("nope.pem"), ..ours };
    let config = TransportConfig { tls: Some(missing), ..TransportConfig::default() };
    let error = config.validate().unwrap_err().to_string();
    assert!(error.contains("tls.certificate") && error.contains("nope.pem"), "{error}");
}

/// Brake commands a bench outside the launch receives through the launcher's TLS gateway in
/// 4 s, with `bench_tls` as its certificate; `Err` when its session cannot open.
fn commands_through_gateway(dir: &Path, ours: &Tls, bench_tls: Tls, port: u16) -> Result<usize, String> {
    let credentials = dir.join(format!("credentials-{port}"));
    let gateway = format!("tls/localhost:{}", port + 1);
    let file = dir.join(format!("launch-{port}.yaml"));
    let path = |p: &Path| format!("{:?}", p.display().to_string());
    std::fs::write(
        &file,
        format!(
            "zenoh:\n  prefix: gw{port}\n  rendezvous_port: {port}\n  gateway: [{gateway}]\n  \
             tls: {{root_ca_certificate: {}, certificate: {}, private_key: {}, mutual: true}}\n  \
             access_control: {{publishers: {{/vehicle/brake_command: [arbiter]}}, external: [bench], credentials_dir: {}}}\n\
             nodes:\n  - name: arbiter\n    kind: arbiter\n    inputs: {{aeb: {{external: true}}, safe_stop: {{external: true}}}}\n",
            path(&ours.root_ca_certificate),
            path(&ours.certificate),
            path(&ours.private_key),
            path(&credentials),
        ),
    )
    .unwrap();
    let log = dir.join(format!("launch-{port}.log"));
    let _launch = launch(&file, |command| {
        command.env("REFLEX_LOG", "error").stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap());
    });
    let start = Instant::now();
    while !credentials.join("bench.password").is_file() {
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(start.elapsed() < Duration::from_secs(20), "the launcher wrote no credentials; its output:\n{output}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let transport = TransportConfig {
        mode: Mode::Client,
        connect: vec![gateway],
        prefix: format!("gw{port}"),
        shared_memory: false,
        tls: Some(bench_tls),
        security: Some(Security::external("bench", credentials.join("bench.password"))),
        ..TransportConfig::default()
    };
    // A client whose certificate the router refuses cannot open its session at all.
    let bench = Node::new(NodeOptions::new("bench").transport(transport)).map_err(|e| e.to_string())?;
    let mut commands =
        bench.subscriber::<BrakeRequest>("/vehicle/brake_command", InputOptions::default().capacity(1024)).unwrap();
    let mut got = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(4) {
        std::thread::sleep(Duration::from_millis(20));
        while let Some(command) = commands.recv() {
            got += usize::from(command.message.source == "arbiter");
        }
    }
    Ok(got)
}

#[test]
fn the_launchers_tls_gateway_lets_the_bench_in_and_a_stranger_not() {
    let (dir, ours, bench, stranger) = fixture("gateway");
    // The arbiter republishes its command at 50 Hz.
    let got = commands_through_gateway(&dir, &ours, bench, 17773);
    assert!(got.as_ref().is_ok_and(|n| *n > 50), "commands through the TLS gateway: {got:?}");
    match commands_through_gateway(&dir, &ours, stranger, 17775) {
        Err(error) => assert!(error.contains("tls/localhost:17776"), "the error names the endpoint: {error}"),
        Ok(got) => assert_eq!(got, 0, "a certificate from another CA must not get through the gateway"),
    }
}

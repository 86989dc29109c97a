//! `reflex bench record`: can the recorder keep up with a camera? A 640x480 rgb8 stream at
//! 30 fps (frames of OpenCV's vtest video, so compression sees real pictures) recorded by
//! `reflex record` as its own process, with zstd and, as the baseline, without compression.

use crate::emit;
use anyhow::{bail, Context, Result};
use reflex_launch::{find_in_ancestors, free_port};
use reflex_msgs::sensor_msgs::Image;
use reflex_runtime::{Node, NodeOptions, TransportConfig};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct RecordBenchArgs {
    /// Seconds of stream per run.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    #[arg(long, default_value_t = 30.0)]
    fps: f64,
    #[arg(long, default_value_t = 640)]
    width: u32,
    #[arg(long, default_value_t = 480)]
    height: u32,
    /// Pictures the frames are made from (cycled).
    #[arg(long, default_value = "nodes/detector/tests/fixtures")]
    pictures: PathBuf,
    /// Also write the table (Markdown) to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

pub fn run(args: RecordBenchArgs) -> Result<()> {
    let mut frames = Vec::new();
    let pictures = find_in_ancestors(&args.pictures);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&pictures)
        .with_context(|| format!("cannot list {}", args.pictures.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    files.sort();
    for file in &files {
        let picture = image::open(file).with_context(|| format!("cannot read {}", file.display()))?.into_rgb8();
        let resized = image::imageops::resize(&picture, args.width, args.height, image::imageops::FilterType::Triangle);
        frames.push(resized.into_raw());
    }
    if frames.is_empty() {
        bail!("no PNG pictures in {}", args.pictures.display());
    }
    let port = free_port()?;
    let prefix = format!("benchrec{port}");
    let transport = TransportConfig { prefix: prefix.clone(), ..TransportConfig::loopback(port) };
    let node = Node::new(NodeOptions::new("bench-record-source").transport(transport))?;
    let mut publisher = node.publisher::<Image>("/camera/image")?;
    let dir = std::env::temp_dir().join(format!("reflex-bench-record-{port}"));
    std::fs::create_dir_all(&dir)?;
    let mut rows = String::new();
    for compression in ["zstd", "none"] {
        let file = dir.join(format!("{compression}.mcap"));
        let recorder = Command::new(std::env::current_exe()?)
            .args(["record", "-o"])
            .arg(&file)
            .args([
                "--compression",
                compression,
                "/camera/image",
                "--prefix",
                &prefix,
                "--connect",
                &format!("tcp/127.0.0.1:{port}"),
            ])
            .env("REFLEX_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start reflex record")?;
        if !publisher.wait_for_subscribers(Duration::from_secs(20)) {
            bail!("the recorder did not subscribe within 20 s");
        }
        std::thread::sleep(Duration::from_millis(300));
        eprintln!("{compression}: {} s of {}x{} rgb8 at {} fps", args.seconds, args.width, args.height, args.fps);
        let period = Duration::from_secs_f64(1.0 / args.fps);
        let (start, mut next, mut sent) = (Instant::now(), Instant::now(), 0usize);
        let mut image = Image {
            width: args.width,
            height: args.height,
            encoding: "rgb8".into(),
            step: args.width * 3,
            ..Default::default()
        };
        while start.elapsed().as_secs_f64() < args.seconds {
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            next += period;
            image.header.stamp = node.clock().now();
            image.data = frames[sent % frames.len()].clone().into();
            publisher.publish(&image)?;
            sent += 1;
        }
        let elapsed = start.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_millis(500));
        // SAFETY: signalling our own child; SIGINT makes it finish the file.
        unsafe { libc::kill(recorder.id() as i32, libc::SIGINT) };
        let output = recorder.wait_with_output()?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let dropped: u64 = stderr
            .lines()
            .find_map(|l| {
                l.strip_prefix("recorded ")
                    .and_then(|r| r.rsplit_once("; "))
                    .and_then(|(_, d)| d.split(' ').next()?.parse().ok())
            })
            .with_context(|| format!("reflex record printed no summary:\n{stderr}"))?;
        let (messages, damage) = reflex_recorder::read_messages(&file).map_err(anyhow::Error::msg)?;
        if let Some(damage) = damage {
            bail!("{}: {damage}", file.display());
        }
        let size = std::fs::metadata(&file)?.len() as f64 / (1024.0 * 1024.0);
        let raw = (sent * (args.width * args.height * 3) as usize) as f64 / (1024.0 * 1024.0);
        rows.push_str(&format!(
            "| {compression} | {:.1} | {sent} | {} | {dropped} | {:.1} | {size:.1} | {:.2} |\n",
            sent as f64 / elapsed,
            messages.len(),
            raw / elapsed,
            raw / size
        ));
        let _ = std::fs::remove_file(&file);
    }
    let table = format!(
        "Recorder throughput: {}x{} rgb8 (vtest pictures) at {} fps for {} s, published through shared memory \
         to `reflex record` in its own process:\n\n\
         | compression | source fps | frames sent | frames in file | dropped | MiB/s in | file MiB | ratio |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n{rows}",
        args.width, args.height, args.fps, args.seconds
    );
    emit(&table, args.markdown.as_deref())
}

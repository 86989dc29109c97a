//! Frame sources on real files: the perception fixtures as an image folder, and an MCAP
//! recording written here with the `mcap` crate (Image and CompressedImage topics).

use reflex_camera::{CameraConfig, FrameSource, ImageFolder, McapSource, SourceError, SourceKind};
use reflex_msgs::sensor_msgs::{CompressedImage, Image};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../detector/tests/fixtures")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("reflex-camera-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn decoded(file: &str) -> image::RgbImage {
    image::open(fixtures().join(file)).unwrap().into_rgb8()
}

#[test]
fn an_image_folder_plays_in_name_order_and_loops() {
    let mut folder = ImageFolder::open(&fixtures(), None, true).unwrap();
    assert_eq!(folder.len(), 5, "dog.png and four vtest frames");
    assert_eq!((folder.width(), folder.height()), (768, 576));
    let mut frame = Vec::new();
    folder.fill(&mut frame).unwrap();
    assert_eq!(frame, decoded("dog.png").into_raw(), "dog.png sorts first");
    for _ in 0..4 {
        folder.fill(&mut frame).unwrap();
    }
    assert_eq!(frame, decoded("vtest_0450.png").into_raw());
    folder.fill(&mut frame).unwrap();
    assert_eq!(frame, decoded("dog.png").into_raw(), "looped back to the first");

    let mut once = ImageFolder::open(&fixtures(), Some((64, 48)), false).unwrap();
    for _ in 0..5 {
        once.fill(&mut frame).unwrap();
        assert_eq!(frame.len(), 64 * 48 * 3, "resized to the configured size");
    }
    assert!(matches!(once.fill(&mut frame), Err(SourceError::Ended)));
}

#[test]
fn image_folder_errors_name_the_folder() {
    let empty = scratch("empty");
    std::fs::write(empty.join("notes.txt"), "no images").unwrap();
    let error = ImageFolder::open(&empty, None, true).err().unwrap().to_string();
    assert!(error.contains(empty.to_str().unwrap()) && error.contains("no .png, .jpg or .jpeg"), "{error}");
    let error = ImageFolder::open(Path::new("/nonexistent/frames"), None, true).err().unwrap().to_string();
    assert!(error.contains("/nonexistent/frames"), "{error}");
    // A file that claims to be a PNG but is not: named when its turn comes.
    std::fs::write(empty.join("a.png"), b"garbage").unwrap();
    let mut folder = ImageFolder::open(&empty, Some((8, 8)), true).unwrap();
    let error = folder.fill(&mut Vec::new()).unwrap_err().to_string();
    assert!(error.contains("a.png") && error.contains("cannot read image"), "{error}");
}

/// Writes an MCAP with the ros2 profile: `/cam/compressed` (PNG CompressedImage of two
/// fixtures, 100 ms apart) and `/cam/raw` (one bgr8 Image).
fn write_recording(path: &Path) {
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut writer = mcap::WriteOptions::new().profile("ros2").create(file).unwrap();
    let compressed_schema = writer
        .add_schema(
            "sensor_msgs/msg/CompressedImage",
            "ros2msg",
            reflex_msgs::schema_text::<CompressedImage>().as_bytes(),
        )
        .unwrap();
    let raw_schema =
        writer.add_schema("sensor_msgs/msg/Image", "ros2msg", reflex_msgs::schema_text::<Image>().as_bytes()).unwrap();
    let compressed = writer.add_channel(compressed_schema, "/cam/compressed", "cdr", &BTreeMap::new()).unwrap();
    let raw = writer.add_channel(raw_schema, "/cam/raw", "cdr", &BTreeMap::new()).unwrap();
    for (i, file) in ["dog.png", "vtest_0000.png"].iter().enumerate() {
        let message = CompressedImage {
            format: "png".into(),
            data: std::fs::read(fixtures().join(file)).unwrap().into(),
            ..Default::default()
        };
        let time = 1_000_000_000 + i as u64 * 100_000_000;
        let header = mcap::records::MessageHeader {
            channel_id: compressed,
            sequence: i as u32,
            log_time: time,
            publish_time: time,
        };
        writer.write_to_known_channel(&header, &reflex_msgs::encode(&message)).unwrap();
    }
    let bgr = Image {
        width: 2,
        height: 1,
        encoding: "bgr8".into(),
        step: 6,
        data: vec![1, 2, 3, 4, 5, 6].into(),
        ..Default::default()
    };
    let header = mcap::records::MessageHeader {
        channel_id: raw,
        sequence: 0,
        log_time: 1_000_000_000,
        publish_time: 1_000_000_000,
    };
    writer.write_to_known_channel(&header, &reflex_msgs::encode(&bgr)).unwrap();
    writer.finish().unwrap();
}

#[test]
fn an_mcap_recording_plays_its_image_topics() {
    let dir = scratch("mcap");
    let path = dir.join("drive.mcap");
    write_recording(&path);

    let mut compressed = McapSource::open(&path, Some("/cam/compressed"), None, false, 100.0).unwrap();
    assert_eq!(compressed.len(), 2);
    assert_eq!((compressed.width(), compressed.height()), (768, 576));
    let mut frame = Vec::new();
    compressed.fill(&mut frame).unwrap();
    assert_eq!(frame, decoded("dog.png").into_raw());
    compressed.fill(&mut frame).unwrap();
    assert_eq!(frame, decoded("vtest_0000.png").into_raw());
    assert!(matches!(compressed.fill(&mut frame), Err(SourceError::Ended)));

    let mut raw = McapSource::open(&path, Some("/cam/raw"), None, true, 1.0).unwrap();
    raw.fill(&mut frame).unwrap();
    assert_eq!(frame, [3, 2, 1, 6, 5, 4], "bgr8 converted to rgb8");

    let error = McapSource::open(&path, None, None, true, 1.0).err().unwrap().to_string();
    assert!(error.contains("several image topics") && error.contains("/cam/compressed, /cam/raw"), "{error}");
    let error = McapSource::open(&path, Some("/nope"), None, true, 1.0).err().unwrap().to_string();
    assert!(error.contains("no image messages on topic /nope"), "{error}");

    // Cut short like a crashed recorder's file: what precedes the damage still plays.
    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.join("cut.mcap");
    std::fs::write(&cut, &bytes[..bytes.len() * 3 / 4]).unwrap();
    match McapSource::open(&cut, Some("/cam/compressed"), None, false, 100.0) {
        Ok(source) => assert!(source.len() >= 1),
        Err(error) => assert!(error.to_string().contains("cut.mcap"), "{error}"),
    }
    std::fs::write(&cut, b"not an mcap file at all").unwrap();
    let error = McapSource::open(&cut, None, None, true, 1.0).err().unwrap().to_string();
    assert!(error.contains("cut.mcap") && error.contains("not a readable MCAP file"), "{error}");
}

#[test]
fn a_missing_v4l2_camera_is_named() {
    let config = CameraConfig { source: SourceKind::V4l2, path: "/dev/video97".into(), ..Default::default() };
    let error = config.open().err().expect("no /dev/video97 here").to_string();
    assert!(error.contains("camera /dev/video97") && error.contains("no such device"), "{error}");
}

#[test]
fn camera_info_carries_intrinsics_and_mounting() {
    let config = CameraConfig { fx: Some(600.0), height_m: 1.45, pitch_deg: 3.0, ..Default::default() };
    let info = config.camera_info(640, 480);
    assert_eq!((info.k[0], info.k[2], info.k[4], info.k[5]), (600.0, 320.0, 500.0, 240.0));
    let mounting = info.mounting().unwrap();
    assert!((mounting.height_m - 1.45).abs() < 1e-12 && (mounting.pitch_rad.to_degrees() - 3.0).abs() < 1e-9);
}

#[test]
fn plays_the_vtest_recording_written_by_mcap_ros2_support() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../recorder/tests/fixtures/vtest.mcap");
    let mut source = McapSource::open(&file, None, Some((384, 288)), false, 1000.0).unwrap();
    assert_eq!((source.len(), source.topic.as_str()), (50, "/camera/image/compressed"));
    let mut frame = Vec::new();
    let mut frames = 0;
    while source.fill(&mut frame).is_ok() {
        assert_eq!(frame.len(), 384 * 288 * 3);
        frames += 1;
    }
    assert_eq!(frames, 50);
}

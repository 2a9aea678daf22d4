//! Video end to end between two native transports over loopback: real libvpx (VP8 and VP9),
//! real webrtc-rs RTP/SRTP, our packetiser, assembler and decoder. A moving pattern carrying
//! its frame number goes in; we check which frames arrive, in what order, and how close each
//! is to the one sent (PSNR).

mod common;
use common::video::*;
use common::*;
use remotemedia_webrtc::media::TrackTarget;
use remotemedia_webrtc::media::video::{VideoCodec, VideoSendConfig};
use remotemedia_webrtc::{Config, Event, MediaKind, Transport};
use std::time::Duration;

fn video_transport(url: &str, id: &str, tweak: impl FnOnce(&mut Config)) -> Transport {
    let mut c = config(url, id);
    tweak(&mut c);
    let t = Transport::new(c).unwrap();
    wait_for(&t, |e| matches!(e, Event::SignalingConnected));
    t
}

/// Runs `send` on another thread while collecting bob's frames from alice (the video queue
/// keeps only the newest few: a receiver must keep up), until 500 ms after it ends.
fn while_sending(b: &Transport, send: impl FnOnce() + Send) -> Vec<remotemedia_webrtc::media::video::VideoFrame> {
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            send();
            done.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        let mut frames = Vec::new();
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            frames.extend(collect(b, "alice", Duration::from_millis(100)));
        }
        frames.extend(collect(b, "alice", Duration::from_millis(500)));
        frames
    })
}

/// Frames arrive in order, most of them, at the quality asked for.
fn check(frames: &[remotemedia_webrtc::media::video::VideoFrame], sent: u32, codec: VideoCodec) -> Vec<u32> {
    let numbers: Vec<u32> = frames.iter().map(|f| frame_number(f).expect("unreadable frame number")).collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "frames out of order or repeated: {numbers:?}");
    assert!(numbers.len() as u32 >= sent * 8 / 10, "{} of {sent} frames arrived: {numbers:?}", numbers.len());
    assert!(frames.iter().all(|f| f.codec == codec), "codec");
    assert!(frames[0].keyframe, "the first frame decoded is a keyframe");
    if std::env::var("RMW_PSNR").is_ok() {
        for f in frames { eprintln!("frame {:?} key {} PSNR {:.1}", frame_number(f), f.keyframe, psnr_of(f).unwrap()); }
    }
    for f in frames {
        let p = psnr_of(f).unwrap();
        assert!(p >= 30.0, "frame {:?} {}x{}: PSNR {p:.1} dB", frame_number(f), f.width, f.height);
    }
    numbers
}

fn pattern_arrives(codec: VideoCodec) {
    let s = server();
    let name = codec.name();
    let a = video_transport(&s.url(), "alice", |c| c.video_codec = name.into());
    let b = video_transport(&s.url(), "bob", |c| c.video_codec = name.into());
    connect(&a, &b);
    let track = a.add_video_track(TrackTarget::Peer("bob".into()), VideoSendConfig::default()).unwrap();
    let frames = while_sending(&b, || send_pattern(&a, track, 0, 60, 30, |_| (640, 480)));
    check(&frames, 60, codec);
    assert_eq!((frames[0].width, frames[0].height), (640, 480));
    let added = b.stats().remote_video_tracks;
    assert_eq!(added.len(), 1);
    assert_eq!((added[0].codec.as_str(), added[0].frames_lost, added[0].decode_errors), (name, 0, 0));
    let st = a.video_track_stats(track).unwrap();
    assert_eq!((st.frames_in, st.peers, st.width, st.height), (60, 1, 640, 480));
    // What bob's RTCP says about alice's video: the codec, and (once a receiver report
    // answered a sender report) a loopback round-trip time.
    let pm = a.stats().peer_media;
    let v = pm.iter().find(|m| m.peer_id == "bob" && m.kind == "video").expect("no video sender to bob");
    assert_eq!((v.codec.as_str(), v.track), (name, Some(track)));
    assert!(v.feedback.rtt_ms.is_none_or(|r| (0.0..100.0).contains(&r)), "{v:?}");
    assert!(st.frames_encoded + st.frames_dropped == 60 && st.keyframes_encoded >= 1, "{st:?}");
}

#[test]
fn vp8_pattern_arrives_in_order_at_30_db_or_better() {
    pattern_arrives(VideoCodec::Vp8);
}

#[test]
fn vp9_pattern_arrives_in_order_at_30_db_or_better() {
    pattern_arrives(VideoCodec::Vp9);
}

#[test]
fn a_resolution_change_mid_stream_restarts_with_a_keyframe() {
    let s = server();
    let a = transport(&s.url(), "alice");
    let b = transport(&s.url(), "bob");
    connect(&a, &b);
    let track = a.add_video_track(TrackTarget::All, VideoSendConfig::default()).unwrap();
    let frames = while_sending(&b, || send_pattern(&a, track, 0, 60, 30, |n| if n < 30 { (640, 480) } else { (320, 240) }));
    check(&frames, 60, VideoCodec::Vp8);
    let first_small = frames.iter().position(|f| f.width == 320).expect("no 320x240 frame arrived");
    assert!(frames[first_small].keyframe, "the new size starts with a keyframe");
    assert!(frames[..first_small].iter().all(|f| (f.width, f.height) == (640, 480)));
    assert!(frames[first_small..].iter().all(|f| (f.width, f.height) == (320, 240)));
}

#[test]
fn a_keyframe_request_is_answered() {
    let s = server();
    let a = transport(&s.url(), "alice");
    let b = transport(&s.url(), "bob");
    connect(&a, &b);
    let track = a.add_video_track(TrackTarget::All, VideoSendConfig::default()).unwrap();
    let frames = while_sending(&b, || {
        send_pattern(&a, track, 0, 20, 30, |_| (320, 240));
        a.request_video_keyframe(track).unwrap();
        send_pattern(&a, track, 20, 40, 30, |_| (320, 240));
    });
    check(&frames, 40, VideoCodec::Vp8);
    let keys: Vec<u32> = frames.iter().filter(|f| f.keyframe).map(|f| frame_number(f).unwrap()).collect();
    assert!(keys.len() >= 2 && keys[1] >= 20, "keyframes at {keys:?}");
    assert!(a.video_track_stats(track).unwrap().keyframes_encoded >= 2);
}

#[test]
fn video_track_is_announced_with_its_codec() {
    let s = server();
    let a = video_transport(&s.url(), "alice", |c| c.video_codec = "vp9".into());
    let b = transport(&s.url(), "bob");
    connect(&a, &b);
    let track = a.add_video_track(TrackTarget::All, VideoSendConfig::default()).unwrap();
    send_pattern(&a, track, 0, 10, 30, |_| (160, 120));
    // Alice prefers VP9 and offers it first; bob (VP8 first) accepts it: VP9 both ways.
    let e = wait_for(&b, |e| matches!(e, Event::TrackAdded { kind: MediaKind::Video, .. }));
    let Event::TrackAdded { codec, clock_rate, .. } = e else { unreachable!() };
    assert_eq!((codec.as_str(), clock_rate), ("vp9", 90_000));
}

#[test]
fn rgba_in_and_rgba_out() {
    let s = server();
    let a = transport(&s.url(), "alice");
    let b = video_transport(&s.url(), "bob", |c| c.video_output_format = remotemedia_webrtc::media::video::VideoOutputFormat::Rgba);
    connect(&a, &b);
    let track = a.add_video_track(TrackTarget::All, VideoSendConfig::default()).unwrap();
    // A solid colour frame as RGBA with a padded stride, as an engine's texture read-back.
    let (w, h, stride) = (320u32, 240u32, 320 * 4 + 64);
    let mut rgba = vec![0u8; (stride * h) as usize];
    for r in 0..h as usize {
        for c in 0..w as usize {
            rgba[r * stride as usize + c * 4..][..4].copy_from_slice(&[200, 40, 90, 255]);
        }
    }
    let raw = remotemedia_webrtc::media::video::RawFrame {
        format: remotemedia_webrtc::media::video::PixelFormat::Rgba,
        width: w,
        height: h,
        planes: [&rgba, &[], &[]],
        strides: [stride, 0, 0],
    };
    for _ in 0..15 {
        a.send_video(track, &raw).unwrap();
        std::thread::sleep(Duration::from_millis(33));
    }
    let frames = collect(&b, "alice", Duration::from_millis(500));
    let f = frames.last().expect("no frame");
    assert_eq!((f.width, f.height, f.strides[0]), (w, h, w * 4));
    let px = &f.data[(120 * w as usize + 160) * 4..][..4];
    let close = |a: u8, b: u8| (a as i32 - b as i32).abs() <= 6;
    assert!(close(px[0], 200) && close(px[1], 40) && close(px[2], 90) && px[3] == 255, "pixel {px:?}");
}

#[test]
fn under_5_percent_loss_nack_and_pli_keep_the_picture_coming() {
    let s = server();
    let a = transport(&s.url(), "alice");
    // Bob's transport drops 5% of the RTP it receives before NACK or the assembler see it.
    let b = video_transport(&s.url(), "bob", |c| c.simulate_loss_percent = 5);
    connect(&a, &b);
    let track = a.add_video_track(TrackTarget::All, VideoSendConfig::default()).unwrap();
    let frames = while_sending(&b, || send_pattern(&a, track, 0, 90, 30, |_| (640, 480)));
    let rx = b.stats().remote_video_tracks[0].clone();
    eprintln!("under loss: {} frames shown; receiver {rx:?}; sender {:?}", frames.len(), a.video_track_stats(track).unwrap());
    // Without repair, 5% loss of ~10 packets per frame would break a frame in three and
    // everything after it until a keyframe. NACK retransmissions repair most; PLI the rest.
    assert!(frames.len() >= 70, "only {} of 90 frames shown", frames.len());
    let numbers: Vec<u32> = frames.iter().map(|f| frame_number(f).unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    for f in &frames {
        let p = psnr_of(f).unwrap();
        assert!(p >= 30.0, "frame {:?} shown damaged: PSNR {p:.1}", frame_number(f));
    }
    // The picture keeps coming (back): one of the last five frames is shown.
    assert!(numbers.iter().any(|&n| n >= 85), "{numbers:?}");
    assert!(rx.packets_out_of_order > 0, "no retransmission arrived: {rx:?}");
}

#[test]
fn under_25_percent_loss_pli_brings_the_picture_back() {
    let s = server();
    let a = transport(&s.url(), "alice");
    // Heavy loss: retransmissions get lost too, frames cannot all be repaired.
    let b = video_transport(&s.url(), "bob", |c| c.simulate_loss_percent = 25);
    connect(&a, &b);
    let track = a.add_video_track(TrackTarget::All, VideoSendConfig::default()).unwrap();
    let frames = while_sending(&b, || send_pattern(&a, track, 0, 120, 30, |_| (640, 480)));
    let rx = b.stats().remote_video_tracks[0].clone();
    let tx = a.video_track_stats(track).unwrap();
    eprintln!("under heavy loss: {} frames shown; receiver {rx:?}; sender {tx:?}", frames.len());
    // Nothing damaged is ever shown: frames after a loss wait for a keyframe.
    for f in &frames {
        let p = psnr_of(f).unwrap();
        assert!(p >= 30.0, "frame {:?} shown damaged: PSNR {p:.1}", frame_number(f));
    }
    if rx.frames_lost > 0 {
        assert!(rx.plis_sent > 0 && tx.keyframes_requested > 1 && rx.keyframes_decoded > 1, "a loss was not answered by a keyframe: {rx:?} {tx:?}");
    }
    // Within a second of the end the picture is (back) there.
    let numbers: Vec<u32> = frames.iter().map(|f| frame_number(f).unwrap()).collect();
    assert!(numbers.iter().any(|&n| n >= 90), "no frame in the last second: {numbers:?}");
    assert!(frames.len() >= 30, "{numbers:?}");
}

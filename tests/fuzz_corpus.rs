//! The fuzz corpus as a regression test: every entry point of `remotemedia_webrtc::fuzzing`
//! runs over every file of fuzz/corpus/<target>/ (the seeds) and of
//! fuzz/artifacts-regressions/<target>/ (inputs that once crashed), on stable, in the normal
//! `cargo test`. A panic names the file; reproduce with
//! `cargo +nightly fuzz run <target> <file>` in fuzz/.
//!
//! `cargo test --release --test fuzz_corpus -- --ignored write_media_seeds` rewrites the media
//! seeds (real VP8, VP9 and Opus packets from our encoders).

use remotemedia_webrtc::fuzzing::TARGETS;
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect()).unwrap_or_default();
    v.sort();
    v
}

#[test]
fn every_target_passes_its_corpus_and_past_crashes() {
    let mut failures = Vec::new();
    for (name, run) in TARGETS.iter() {
        let seeds = files(&fuzz_dir().join("corpus").join(name));
        assert!(!seeds.is_empty(), "no seed corpus for {name}");
        let all = seeds.into_iter().chain(files(&fuzz_dir().join("artifacts-regressions").join(name)));
        for file in all {
            let data = std::fs::read(&file).unwrap();
            if let Err(e) = std::panic::catch_unwind(|| run(&data)) {
                let msg = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
                failures.push(format!("{name}: {}: {msg}", file.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{} input(s) failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_target_has_a_fuzz_target_file() {
    for (name, _) in TARGETS.iter() {
        let src = std::fs::read_to_string(fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"))).unwrap();
        assert!(src.contains(&format!("fuzzing::{name}(")), "fuzz/fuzz_targets/{name}.rs does not call fuzzing::{name}");
    }
}

/// Writes fuzz/corpus/{video_rtp,audio_rtp}/gen-* from real encoder output: a few frames of
/// a moving pattern (VP8, VP9) and of a tone (Opus), in the targets' input formats.
#[test]
#[ignore]
fn write_media_seeds() {
    use remotemedia_webrtc::media::video::vpx::{Codec, Encoder, EncoderConfig};
    use remotemedia_webrtc::media::video::I420Buf;
    let out = |target: &str, name: &str, data: &[u8]| {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
    };
    for codec in [Codec::Vp8, Codec::Vp9] {
        let (w, h) = (32, 24);
        let cfg = EncoderConfig { width: w, height: h, bitrate_kbps: 60, keyframe_interval: 0, ..EncoderConfig::new(codec) };
        let mut enc = Encoder::new(&cfg).unwrap();
        let mut frames = Vec::new();
        for t in 0..6u32 {
            let mut img = I420Buf::new_black(w, h);
            let (y, u, v) = img.planes_mut();
            for (i, p) in y.iter_mut().enumerate() {
                *p = ((i as u32 % w + t * 3) * 7 + i as u32 / w * 5) as u8;
            }
            u.fill(90 + t as u8 * 10);
            v.fill(160 - t as u8 * 10);
            let img = img.as_i420();
            for f in enc.encode(&img, t as i64, t == 0).unwrap() {
                frames.push(f.data);
            }
        }
        assert!(frames.len() >= 3, "{codec:?}: {} frames", frames.len());
        let base = if codec == Codec::Vp9 { 1u8 } else { 0 };
        // Sender mode (bit 2): [op][len u16][frame]; op = MTU index << 4 | clock step << 2 | network.
        for (name, ops) in [("gen-inorder", [0x40u8, 0x40, 0x40, 0x40, 0x40, 0x40]), ("gen-lossy", [0x14, 0x21, 0x3a, 0x03, 0x18, 0x40])] {
            let mut data = vec![base | 4];
            for (f, op) in frames.iter().zip(ops) {
                data.push(op);
                data.extend((f.len() as u16).to_be_bytes());
                data.extend(f);
            }
            out("video_rtp", &format!("{name}-{}", codec_name(codec)), &data);
            // The same with RGBA output.
            data[0] |= 2;
            out("video_rtp", &format!("{name}-{}-rgba", codec_name(codec)), &data);
        }
        // Raw mode: the keyframe packetised by hand, as RTP an attacker could send.
        let mut data = vec![base];
        let mut p: Box<dyn webrtc::rtp::packetizer::Payloader> = match codec {
            Codec::Vp8 => Box::new(webrtc::rtp::codecs::vp8::Vp8Payloader::default()),
            Codec::Vp9 => Box::new(webrtc::rtp::codecs::vp9::Vp9Payloader::default()),
        };
        for (k, f) in frames.iter().take(3).enumerate() {
            let packets = p.payload(200, &bytes::Bytes::copy_from_slice(f)).unwrap();
            for (i, pkt) in packets.iter().enumerate() {
                data.extend((100u16 + (k * 20 + i) as u16).to_be_bytes());
                data.extend((3000 * k as u32).to_be_bytes());
                data.push((i + 1 == packets.len()) as u8);
                data.extend((pkt.len() as u16).to_be_bytes());
                data.extend(pkt);
            }
        }
        out("video_rtp", &format!("gen-raw-{}", codec_name(codec)), &data);
    }

    // Opus: 20 ms packets of a 440 Hz tone with in-band FEC, mono and stereo encoders.
    use audiopus::coder::Encoder as OpusEncoder;
    use audiopus::{Application, Bitrate, Channels, SampleRate};
    for (channels, name) in [(Channels::Mono, "mono"), (Channels::Stereo, "stereo")] {
        let mut enc = OpusEncoder::new(SampleRate::Hz48000, channels, Application::Voip).unwrap();
        enc.set_bitrate(Bitrate::BitsPerSecond(16_000)).unwrap();
        enc.set_inband_fec(true).unwrap();
        enc.set_packet_loss_perc(20).unwrap();
        let n = channels as usize;
        let mut packets = Vec::new();
        let mut buf = vec![0u8; 1500];
        for k in 0..8 {
            let pcm: Vec<f32> = (0..960 * n).map(|i| 0.3 * (2.0 * std::f32::consts::PI * 440.0 * (k * 960 + i / n) as f32 / 48_000.0).sin()).collect();
            let len = enc.encode_float(&pcm, &mut buf).unwrap();
            assert!(len < 256, "{len}");
            packets.push(buf[..len].to_vec());
        }
        // [flags: rate index, stereo bit 3, S16 bit 4][wait] then [seq][ts][step ms][len u8][payload].
        for (suffix, flags, order) in [("inorder", 6u8, vec![0usize, 1, 2, 3, 4, 5, 6, 7]), ("reordered-lost", 0x12, vec![0, 2, 1, 3, 5, 6, 7]), ("44k-s16", 0x1d, vec![0, 1, 2, 4, 3, 5, 6, 7])] {
            let mut data = vec![flags, 40];
            for i in order {
                data.extend((65_530u16.wrapping_add(i as u16)).to_be_bytes());
                data.extend((960 * i as u32).to_be_bytes());
                data.push(20);
                data.push(packets[i].len() as u8);
                data.extend(&packets[i]);
            }
            out("audio_rtp", &format!("gen-{name}-{suffix}"), &data);
        }
    }
}

fn codec_name(c: remotemedia_webrtc::media::video::vpx::Codec) -> &'static str {
    match c {
        remotemedia_webrtc::media::video::vpx::Codec::Vp8 => "vp8",
        remotemedia_webrtc::media::video::vpx::Codec::Vp9 => "vp9",
    }
}

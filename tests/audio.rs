//! Audio end to end between two native transports over loopback: real Opus (libopus), real
//! webrtc-rs RTP/SRTP, our jitter buffer and decoder. What a user would check: the tone that
//! arrives has the frequency sent, arrives without gaps, in the format asked for.

mod common;
use common::audio::*;
use common::*;
use remotemedia_webrtc::media::TrackTarget;
use remotemedia_webrtc::media::audio::{AudioSendConfig, Pcm, SampleFormat, Samples};
use remotemedia_webrtc::{Config, Error, Event, MediaKind, Transport};
use std::time::Duration;

fn audio_transport(url: &str, id: &str, tweak: impl FnOnce(&mut Config)) -> Transport {
    let mut c = config(url, id);
    tweak(&mut c);
    let t = Transport::new(c).unwrap();
    wait_for(&t, |e| matches!(e, Event::SignalingConnected));
    t
}

/// Checks of one received stream: frames continuous in RTP time and in the waveform, none
/// concealed (loopback loses nothing), the right shape and frequency.
fn check_tone(frames: &[remotemedia_webrtc::media::audio::AudioFrame], rate: u32, channels: u16, freqs: &[f64], min_seconds: f64) {
    assert!(!frames.is_empty(), "no audio received");
    for f in frames {
        assert_eq!((f.sample_rate, f.channels), (rate, channels));
        assert!(!f.concealed, "a frame was concealed on a lossless link");
    }
    for w in frames.windows(2) {
        let expected = w[0].rtp_timestamp.wrapping_add((w[0].samples_per_channel() as u64 * 48_000 / rate as u64) as u32);
        assert_eq!(w[1].rtp_timestamp, expected, "gap in RTP time");
    }
    let total: usize = frames.iter().map(|f| f.samples_per_channel()).sum();
    assert!(total as f64 >= min_seconds * rate as f64, "only {total} samples per channel");
    for (c, &want) in freqs.iter().enumerate() {
        // Skip the codec's first 100 ms (it fades in).
        let x = channel(frames, c);
        let x = &x[rate as usize / 10..];
        let hz = frequency(x, rate);
        assert!((hz - want).abs() < 2.0, "channel {c}: {hz:.1} Hz received, {want} Hz sent");
        let level = rms(x);
        assert!((0.12..0.32).contains(&level), "channel {c}: RMS {level:.3} for a 0.3 sine");
        // Continuity in the waveform: no sample jumps further than the sine can move (with
        // codec slack). A dropped or doubled frame would splice two phases.
        let limit = (2.0 * std::f64::consts::PI * want * 0.3 / rate as f64 * 2.5) as f32;
        assert!(max_step(x) < limit, "channel {c}: step {} > {limit}: a discontinuity", max_step(x));
    }
}

#[test]
fn mono_sine_arrives_at_its_frequency_without_gaps() {
    let s = server();
    let a = transport(&s.url(), "alice");
    let b = transport(&s.url(), "bob");
    connect(&a, &b);
    let track = a.add_audio_track(TrackTarget::Peer("bob".into()), AudioSendConfig::default()).unwrap();
    let sent = send_sine(&a, track, &[440.0], 48_000, 1.5, &[960], false);
    let frames = collect(&b, "alice", Duration::from_millis(300));
    // Announced when its first packet arrived.
    let added = wait_for(&b, |e| matches!(e, Event::TrackAdded { .. }));
    let Event::TrackAdded { peer_id, kind, codec, clock_rate, .. } = added else { unreachable!() };
    assert_eq!((peer_id.as_str(), kind, codec.as_str(), clock_rate), ("alice", MediaKind::Audio, "opus", 48_000));
    // Default output: 48 kHz stereo f32 (mono Opus comes out on both channels).
    check_tone(&frames, 48_000, 2, &[440.0, 440.0], 1.3);
    assert!(matches!(frames[0].samples, Samples::F32(_)));

    let st = a.audio_track_stats(track).unwrap();
    assert_eq!(st.samples_in, sent);
    assert_eq!(st.frames_encoded, sent / 960);
    assert_eq!((st.packets_sent, st.peers, st.peers_busy, st.queue_full), (st.frames_encoded, 1, 0, 0));
    let rx = b.stats().remote_audio_tracks;
    assert_eq!(rx.len(), 1);
    assert_eq!((rx[0].packets_lost, rx[0].frames_concealed, rx[0].decode_errors), (0, 0, 0));
    assert_eq!(rx[0].frames_decoded as usize, frames.len());
    assert!(rx[0].level < 20, "level {} dBov for a 0.3 sine", rx[0].level);
}

#[test]
fn stereo_keeps_its_channels_apart() {
    let s = server();
    let a = transport(&s.url(), "alice");
    let b = transport(&s.url(), "bob");
    connect(&a, &b);
    let cfg = AudioSendConfig { channels: 2, bitrate: 96_000, application: remotemedia_webrtc::media::audio::OpusApplication::Audio, ..Default::default() };
    let track = a.add_audio_track(TrackTarget::Peer("bob".into()), cfg).unwrap();
    send_sine(&a, track, &[440.0, 660.0], 48_000, 1.5, &[480, 1024], false);
    let frames = collect(&b, "alice", Duration::from_millis(300));
    check_tone(&frames, 48_000, 2, &[440.0, 660.0], 1.3);
}

#[test]
fn odd_chunks_at_44100_are_resampled_and_delivered_as_s16_at_the_rate_asked() {
    let s = server();
    let a = transport(&s.url(), "alice");
    let b = audio_transport(&s.url(), "bob", |c| {
        c.audio_output_sample_rate = 44_100;
        c.audio_output_channels = 1;
        c.audio_output_format = SampleFormat::S16;
    });
    connect(&a, &b);
    let cfg = AudioSendConfig { sample_rate: 44_100, ..Default::default() };
    let track = a.add_audio_track(TrackTarget::Peer("bob".into()), cfg).unwrap();
    // Engine-sized chunks: 441, 256, 1024 and an odd 333 frames, as s16.
    send_sine(&a, track, &[440.0], 44_100, 1.5, &[441, 256, 1024, 333], true);
    let frames = collect(&b, "alice", Duration::from_millis(300));
    assert!(matches!(frames[0].samples, Samples::S16(_)));
    check_tone(&frames, 44_100, 1, &[440.0], 1.2);
}

#[test]
fn broadcast_encodes_once_and_reaches_every_peer_of_the_target() {
    let s = server();
    let a = transport(&s.url(), "alice");
    let b = transport(&s.url(), "bob");
    let c = transport(&s.url(), "carol");
    connect(&a, &b);
    connect(&a, &c);
    let track = a.add_audio_track(TrackTarget::All, AudioSendConfig::default()).unwrap();
    send_sine(&a, track, &[440.0], 48_000, 1.0, &[960], false);
    for r in [&b, &c] {
        let frames = collect(r, "alice", Duration::from_millis(300));
        check_tone(&frames, 48_000, 2, &[440.0, 440.0], 0.8);
    }
    let st = a.audio_track_stats(track).unwrap();
    assert_eq!(st.frames_encoded, 50, "encoded once per frame");
    assert_eq!(st.packets_sent, 100, "sent once per peer");
    assert_eq!(st.peers, 2);
}

#[test]
fn a_session_target_follows_membership_and_a_peer_carries_one_track() {
    let s = server();
    let a = transport(&s.url(), "alice");
    let b = transport(&s.url(), "bob");
    let c = transport(&s.url(), "carol");
    connect(&a, &b);
    connect(&a, &c);
    a.create_session("room").unwrap();
    a.add_session_peer("room", "bob").unwrap();
    let t1 = a.add_audio_track(TrackTarget::Session("room".into()), AudioSendConfig::default()).unwrap();
    let t2 = a.add_audio_track(TrackTarget::Peer("bob".into()), AudioSendConfig::default()).unwrap();
    send_sine(&a, t1, &[440.0], 48_000, 0.2, &[960], false);
    send_sine(&a, t2, &[660.0], 48_000, 0.2, &[960], false);
    let s1 = a.audio_track_stats(t1).unwrap();
    let s2 = a.audio_track_stats(t2).unwrap();
    assert_eq!((s1.peers, s1.peers_busy), (1, 0), "t1 holds bob");
    assert_eq!((s2.peers, s2.peers_busy, s2.packets_sent), (0, 1, 0), "bob is busy with t1");
    assert!(collect(&c, "alice", Duration::from_millis(300)).is_empty(), "carol is not in the session");

    // Carol joins the room: the next frames reach her without any call on the track.
    a.add_session_peer("room", "carol").unwrap();
    send_sine(&a, t1, &[440.0], 48_000, 1.0, &[960], false);
    let frames = collect(&c, "alice", Duration::from_millis(300));
    check_tone(&frames, 48_000, 2, &[440.0, 440.0], 0.8);

    // Removing t1 frees bob for t2.
    a.remove_audio_track(t1).unwrap();
    assert!(matches!(a.send_audio(t1, Pcm::F32(&[0.0; 960])), Err(Error::NotFound(_))));
    drop(collect(&b, "alice", Duration::from_millis(200)));
    send_sine(&a, t2, &[660.0], 48_000, 1.0, &[960], false);
    let frames = collect(&b, "alice", Duration::from_millis(300));
    assert!(!frames.is_empty());
    let x = channel(&frames, 0);
    let hz = frequency(&x[frames.len() * 960 / 2..], 48_000);
    assert!((hz - 660.0).abs() < 3.0, "bob hears t2 now: {hz:.1} Hz");
}

#[test]
fn a_full_queue_refuses_input_instead_of_blocking_or_growing() {
    let s = server();
    let a = transport(&s.url(), "alice");
    let cfg = AudioSendConfig { max_queue_ms: 100, ..Default::default() };
    let track = a.add_audio_track(TrackTarget::None, cfg).unwrap();
    // Far faster than real time: the queue (100 ms) must fill and refuse, never block.
    let chunk = sine(&[440.0], 48_000, 0, 4_800);
    let started = std::time::Instant::now();
    let refused = (0..200).filter(|_| matches!(a.send_audio(track, Pcm::F32(&chunk)), Err(Error::QueueFull(_)))).count();
    let elapsed = started.elapsed();
    assert!(refused > 0, "200 x 100 ms sent at once: some must be refused");
    assert!(elapsed < Duration::from_secs(2), "send_audio blocked: {elapsed:?}");
    assert_eq!(a.audio_track_stats(track).unwrap().queue_full, refused as u64);
}

#[test]
fn bad_audio_arguments_are_errors() {
    let s = server();
    let a = transport(&s.url(), "alice");
    for bad in [
        AudioSendConfig { sample_rate: 22_050, ..Default::default() },
        AudioSendConfig { channels: 3, ..Default::default() },
        AudioSendConfig { frame_ms: 15, ..Default::default() },
        AudioSendConfig { bitrate: 1_000, ..Default::default() },
        AudioSendConfig { complexity: 11, ..Default::default() },
    ] {
        assert!(matches!(a.add_audio_track(TrackTarget::All, bad), Err(Error::InvalidArgument(_))));
    }
    assert!(matches!(a.add_audio_track(TrackTarget::Peer("nobody".into()), AudioSendConfig::default()), Err(Error::NotFound(_))));
    assert!(matches!(a.add_audio_track(TrackTarget::Session("nowhere".into()), AudioSendConfig::default()), Err(Error::NotFound(_))));
    let stereo = a.add_audio_track(TrackTarget::None, AudioSendConfig { channels: 2, ..Default::default() }).unwrap();
    assert!(matches!(a.send_audio(stereo, Pcm::F32(&[0.0; 3])), Err(Error::InvalidArgument(_))), "odd sample count for stereo");
    assert!(matches!(a.send_audio(stereo, Pcm::F32(&[])), Err(Error::InvalidArgument(_))));
    // A chunk longer than the whole queue (200 ms) could never be taken: an argument error,
    // not QueueFull, so a retry loop cannot spin for ever.
    assert!(matches!(a.send_audio(stereo, Pcm::F32(&vec![0.0; 2 * 48_000 / 4])), Err(Error::InvalidArgument(_))));
    let off = audio_transport(&s.url(), "mute", |c| c.enable_audio = false);
    assert!(matches!(off.add_audio_track(TrackTarget::All, AudioSendConfig::default()), Err(Error::InvalidArgument(_))));
}

#[test]
fn remote_track_is_announced_and_its_end_too() {
    let s = server();
    let a = transport(&s.url(), "alice");
    let b = transport(&s.url(), "bob");
    connect(&a, &b);
    let track = a.add_audio_track(TrackTarget::All, AudioSendConfig::default()).unwrap();
    send_sine(&a, track, &[440.0], 48_000, 0.3, &[960], false);
    wait_for(&b, |e| matches!(e, Event::TrackAdded { peer_id, .. } if peer_id == "alice"));
    a.disconnect_peer("bob").unwrap();
    wait_for(&b, |e| matches!(e, Event::TrackRemoved { peer_id, kind: MediaKind::Audio, .. } if peer_id == "alice"));
}

#[test]
fn the_audio_handler_gets_frames_on_its_thread_and_can_be_cleared() {
    let s = server();
    let a = transport(&s.url(), "alice");
    let b = transport(&s.url(), "bob");
    connect(&a, &b);
    let (tx, rx) = std::sync::mpsc::channel();
    b.set_audio_handler(Some(Box::new(move |f| {
        let _ = tx.send((std::thread::current().name().map(String::from), f.samples_per_channel()));
    })))
    .unwrap();
    let track = a.add_audio_track(TrackTarget::All, AudioSendConfig::default()).unwrap();
    send_sine(&a, track, &[440.0], 48_000, 0.5, &[960], false);
    let (thread, n) = rx.recv_timeout(TIMEOUT).expect("no frame reached the handler");
    assert_eq!(thread.as_deref(), Some("rmw-audio-out"));
    assert_eq!(n, 960);
    b.set_audio_handler(None).unwrap();
    while rx.recv_timeout(Duration::from_millis(200)).is_ok() {}
    send_sine(&a, track, &[440.0], 48_000, 0.3, &[960], false);
    assert!(b.poll_audio(Some(TIMEOUT)).unwrap().is_some(), "after clearing the handler, frames are polled");
}

#[test]
fn under_10_percent_loss_audio_stays_continuous() {
    let s = server();
    let a = transport(&s.url(), "alice");
    let b = audio_transport(&s.url(), "bob", |c| c.simulate_loss_percent = 10);
    connect(&a, &b);
    let track = a.add_audio_track(TrackTarget::Peer("bob".into()), AudioSendConfig { expected_loss_percent: 10, ..Default::default() }).unwrap();
    let frames = std::thread::scope(|scope| {
        scope.spawn(|| send_sine(&a, track, &[440.0], 48_000, 2.0, &[960], false));
        collect(&b, "alice", Duration::from_millis(2_400))
    });
    let rx = b.stats().remote_audio_tracks[0].clone();
    eprintln!("under loss: {} frames; {rx:?}", frames.len());
    assert!(rx.packets_lost > 0, "the simulated loss did not happen: {rx:?}");
    assert!(rx.frames_fec + rx.frames_concealed >= rx.packets_lost, "every lost packet is rebuilt or concealed: {rx:?}");
    // Every 20 ms is there (received, rebuilt or concealed), in RTP order without gaps.
    for w in frames.windows(2) {
        assert_eq!(w[1].rtp_timestamp, w[0].rtp_timestamp.wrapping_add(960), "gap in RTP time");
    }
    assert!(frames.len() >= 95, "{} frames for 2 s", frames.len());
    let x = channel(&frames, 0);
    let hz = frequency(&x[4_800..], 48_000);
    // Concealed stretches are not a perfect sine: a little more slack than on a clean link.
    assert!((hz - 440.0).abs() < 6.0, "{hz:.1} Hz under loss");
}

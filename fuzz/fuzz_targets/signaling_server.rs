#![no_main]
// See remotemedia_webrtc::fuzzing::signaling_server for the input format and the invariants checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| remotemedia_webrtc::fuzzing::signaling_server(data));

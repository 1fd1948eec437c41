//! Feeds arbitrary bytes, in arbitrary pieces, to the frame decoder: every
//! outcome must be a message or an error value, never a panic or an
//! allocation beyond the frame limit.

#![no_main]

use cm_proto::FrameDecoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the piece size so splits across frame boundaries are explored.
    let Some((&split, rest)) = data.split_first() else { return };
    let piece = usize::from(split).max(1);
    let mut dec = FrameDecoder::new(64 * 1024);
    for chunk in rest.chunks(piece) {
        dec.push(chunk);
        loop {
            match dec.next_message() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    let _ = cm_proto::decode(rest);
});

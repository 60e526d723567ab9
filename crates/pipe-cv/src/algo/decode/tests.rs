use super::*;
use pipe_core::data::testpng::{self, GREY_ALPHA, PALETTE, RGBA};

const LAYOUT: Layout = Layout { size: 4, grey: false, max_megapixels: 50.0 };

fn decode_bytes(bytes: &[u8], layout: Layout) -> Result<Decoded, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.png");
    pipe_core::fsx::write(&path, bytes).unwrap();
    decode_file(&path, layout).map_err(|e| match e {
        DecodeError::Bad(m) => m,
        DecodeError::TooLarge(m) => format!("too large: {m}"),
    })
}

#[test]
fn rgba_transparency_becomes_white() {
    // 2x2: opaque red, fully transparent black, half-transparent blue, opaque green.
    let px = [255, 0, 0, 255, 0, 0, 0, 0, 0, 0, 255, 128, 0, 255, 0, 255];
    let d = decode_bytes(&testpng::png(2, 2, RGBA, &px, &[], &[]), Layout { size: 2, ..LAYOUT }).unwrap();
    assert_eq!(&d.pixels[0..3], &[255, 0, 0]);
    assert_eq!(&d.pixels[3..6], &[255, 255, 255], "transparent -> white");
    assert_eq!(&d.pixels[6..9], &[127, 127, 255], "half blue over white");
    assert_eq!(&d.pixels[9..12], &[0, 255, 0]);
}

#[test]
fn palette_with_a_transparent_entry_and_grey_alpha() {
    let palette = [[10, 20, 30], [200, 100, 50]];
    let d = decode_bytes(&testpng::png(2, 1, PALETTE, &[0, 1], &palette, &[0]), Layout { size: 2, ..LAYOUT }).unwrap();
    // Entry 0 is transparent -> white; a 2x1 image is padded to 2x2 with white.
    assert_eq!(&d.pixels[..6], &[255, 255, 255, 200, 100, 50], "{:?}", d.pixels);
    let g = decode_bytes(&testpng::png(1, 1, GREY_ALPHA, &[0, 255], &[], &[]), Layout { size: 1, grey: true, ..LAYOUT }).unwrap();
    assert_eq!(g.pixels, vec![0]);
}

#[test]
fn images_are_padded_to_a_square_not_cropped() {
    // 4x2 black image into a 4x4 square: rows 0 and 3 white, rows 1-2 black.
    let d = decode_bytes(&testpng::solid(4, 2, [0, 0, 0]), LAYOUT).unwrap();
    let row = |r: usize| &d.pixels[r * 12..(r + 1) * 12];
    assert!(row(0).iter().all(|&v| v == 255) && row(3).iter().all(|&v| v == 255));
    assert!(row(1).iter().all(|&v| v == 0) && row(2).iter().all(|&v| v == 0));
}

#[test]
fn identical_pixels_hash_alike_whatever_the_encoding() {
    let plain = testpng::solid(3, 3, [9, 8, 7]);
    let rgba = testpng::png(3, 3, RGBA, &[9, 8, 7, 255].repeat(9), &[], &[]);
    assert_eq!(decode_bytes(&plain, LAYOUT).unwrap().hash, decode_bytes(&rgba, LAYOUT).unwrap().hash);
    assert_ne!(decode_bytes(&plain, LAYOUT).unwrap().hash, decode_bytes(&testpng::solid(3, 3, [9, 8, 6]), LAYOUT).unwrap().hash);
}

#[test]
fn broken_files_say_what_is_wrong() {
    assert_eq!(decode_bytes(b"", LAYOUT).unwrap_err(), "empty file (0 bytes)");
    let good = testpng::solid(8, 8, [1, 2, 3]);
    let truncated = &good[..good.len() / 2];
    assert!(decode_bytes(truncated, LAYOUT).unwrap_err().contains("truncated"));
    assert!(decode_bytes(b"this is not an image at all", LAYOUT).unwrap_err().contains("not an image"));
    let huge = Layout { max_megapixels: 0.00001, ..LAYOUT };
    assert!(decode_bytes(&good, huge).unwrap_err().starts_with("too large: 8x8 pixels (0 MP) is over max_megapixels"));
}

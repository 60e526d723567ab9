//! Test fixtures: a minimal PNG writer (stored deflate blocks, no
//! compression) that can produce what real collections contain and OpenCV
//! cannot write: palette images with a transparent entry, grey + alpha.

/// PNG colour types.
pub const GREY: u8 = 0;
pub const RGB: u8 = 2;
pub const PALETTE: u8 = 3;
pub const GREY_ALPHA: u8 = 4;
pub const RGBA: u8 = 6;

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
}

/// An 8-bit PNG of `w x h` with `pixels` packed per the colour type.
pub fn png(w: u32, h: u32, color_type: u8, pixels: &[u8], palette: &[[u8; 3]], transparency: &[u8]) -> Vec<u8> {
    let bpp = match color_type {
        GREY | PALETTE => 1,
        GREY_ALPHA => 2,
        RGB => 3,
        _ => 4,
    };
    let mut raw = Vec::new();
    for row in pixels.chunks_exact(w as usize * bpp) {
        raw.push(0); // filter: none
        raw.extend_from_slice(row);
    }
    // zlib: header, stored blocks, adler32.
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());

    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, color_type, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    if !palette.is_empty() {
        chunk(&mut out, b"PLTE", &palette.concat());
    }
    if !transparency.is_empty() {
        chunk(&mut out, b"tRNS", transparency);
    }
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A solid RGB PNG.
pub fn solid(w: u32, h: u32, rgb: [u8; 3]) -> Vec<u8> {
    png(w, h, RGB, &rgb.repeat((w * h) as usize), &[], &[])
}

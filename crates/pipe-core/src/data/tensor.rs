//! The decoded-image tensor file: safetensors layout (an 8-byte little-endian
//! header length, a JSON header, raw bytes) holding one `U8` tensor
//! `images` of shape `[N, H, W, C]`. Written and read here without libtorch;
//! any safetensors reader (Python's `safetensors`, `tch`) opens it too.
//!
//! Larger than memory. [`ImageTensor::read`] memory-maps the file instead of
//! reading it: a stage touches only the rows it uses, and the pages it has
//! read are handed back to the kernel every [`RELEASE_BYTES`] of images
//! (`madvise(MADV_DONTNEED)`: the file's bytes are re-read from the page
//! cache on the next touch), so a pass over a data set far larger than
//! memory keeps a small resident set. The threshold is small because a
//! random read maps more than it reads: the kernel maps whole page-cache
//! folios around a fault (measured: ~6 bytes resident per byte served when
//! a CNN epoch reads 49 KB images in shuffled order). [`TensorWriter`] writes the file
//! image by image, for stages whose output does not fit in memory either.

use std::fmt;
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::DataError;
use crate::fsx;
use crate::util::{IoContext, PathError};

/// Bytes of images a mapped tensor serves before it drops its resident pages.
pub const RELEASE_BYTES: usize = 16 << 20;

/// The room [`TensorWriter`] keeps for the header, which it can only write
/// once the count is known: enough for any `[N, H, W, C]` and offsets.
const RESERVED_HEADER: usize = 160;

/// Images of one size, stored contiguously (`N x H x W x C` bytes): in
/// memory while built, memory-mapped once read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageTensor {
    pub count: usize,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub data: Pixels,
}

/// The bytes of an [`ImageTensor`].
pub enum Pixels {
    Memory(Vec<u8>),
    Mapped(Mapped),
}

/// A read-only map of a tensor file's data, which counts the bytes served
/// since it last released its pages.
pub struct Mapped {
    map: memmap2::Mmap,
    offset: usize,
    len: usize,
    served: AtomicUsize,
}

impl Deref for Pixels {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Pixels::Memory(v) => v,
            Pixels::Mapped(m) => &m.map[m.offset..m.offset + m.len],
        }
    }
}

impl Clone for Pixels {
    /// A copy in memory (tests and small data only).
    fn clone(&self) -> Self {
        Pixels::Memory(self.to_vec())
    }
}

impl PartialEq for Pixels {
    fn eq(&self, other: &Self) -> bool {
        self[..] == other[..]
    }
}

impl fmt::Debug for Pixels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = if matches!(self, Pixels::Memory(_)) { "in memory" } else { "mapped" };
        write!(f, "Pixels({} bytes {how})", self.len())
    }
}

impl Mapped {
    /// Counts `bytes` served; past [`RELEASE_BYTES`], drops the mapping's
    /// resident pages (they are the file's, re-read on the next touch).
    fn served(&self, bytes: usize) {
        if self.served.fetch_add(bytes, Ordering::Relaxed) + bytes < RELEASE_BYTES {
            return;
        }
        self.served.store(0, Ordering::Relaxed);
        // SAFETY: a private, read-only file mapping: MADV_DONTNEED only
        // drops pages, and the next access reads the same bytes from the
        // file again (cache entries never change once published). Slices
        // handed out stay valid; touching them faults the page back in.
        unsafe {
            libc::madvise(self.map.as_ptr() as *mut libc::c_void, self.map.len(), libc::MADV_DONTNEED);
        }
    }
}

impl ImageTensor {
    pub fn new(height: usize, width: usize, channels: usize) -> Self {
        ImageTensor { count: 0, height, width, channels, data: Pixels::Memory(Vec::new()) }
    }

    pub fn image_len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// Appends an image to a tensor in memory.
    pub fn push(&mut self, pixels: &[u8]) {
        assert_eq!(pixels.len(), self.image_len(), "image of the wrong size");
        match &mut self.data {
            Pixels::Memory(v) => v.extend_from_slice(pixels),
            Pixels::Mapped(_) => panic!("a tensor read from a file is read-only: write a new one with TensorWriter"),
        }
        self.count += 1;
    }

    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        if let Pixels::Mapped(m) = &self.data {
            m.served(n);
        }
        &self.data[i * n..(i + 1) * n]
    }

    pub fn write(&self, path: &Path) -> Result<(), PathError> {
        let mut w = TensorWriter::with_count(path, self.count, self.height, self.width, self.channels)?;
        w.push_many(&self.data, self.count)?;
        w.finish()
    }

    /// Maps the file at `path` (see the module's doc): nothing is read but
    /// the header until images are asked for.
    pub fn read(path: &Path) -> Result<ImageTensor, DataError> {
        let bad = |why: &str| DataError::malformed(path, format!("not an image tensor file ({why})"));
        let mut f = fsx::open(path)?;
        let mut len = [0u8; 8];
        f.read_exact(&mut len).map_err(|_| bad("too short"))?;
        let len = u64::from_le_bytes(len) as usize;
        if len > 1 << 20 {
            return Err(bad("header too large"));
        }
        let mut h = vec![0u8; len];
        f.read_exact(&mut h).map_err(|_| bad("truncated header"))?;
        let header: serde_json::Value = serde_json::from_slice(&h).map_err(|_| bad("header is not JSON"))?;
        let t = &header["images"];
        if t["dtype"] != "U8" {
            return Err(bad("dtype is not U8"));
        }
        let shape: Vec<usize> =
            t["shape"].as_array().ok_or_else(|| bad("no shape"))?.iter().filter_map(|v| v.as_u64().map(|v| v as usize)).collect();
        let [count, height, width, channels] = shape[..] else { return Err(bad("shape is not [N, H, W, C]")) };
        let bytes = count * height * width * channels;
        let offset = 8 + len;
        let size = f.metadata().at("read", path)?.len() as usize;
        if size != offset + bytes {
            return Err(bad("data length does not match the shape"));
        }
        if bytes == 0 {
            return Ok(ImageTensor { count, height, width, channels, data: Pixels::Memory(Vec::new()) });
        }
        // SAFETY: cache entries are immutable once published, and stages
        // only read their inputs; a file changed under the map by hand is
        // what `pipe verify` exists to find.
        let map = unsafe { memmap2::Mmap::map(&f) }.at("map", path)?;
        let data = Pixels::Mapped(Mapped { map, offset, len: bytes, served: AtomicUsize::new(0) });
        Ok(ImageTensor { count, height, width, channels, data })
    }
}

/// Writes a tensor file image by image: memory stays at one image whatever
/// the count. It writes `PATH.partial` and renames it to `PATH` in
/// [`TensorWriter::finish`]: a map of an older file at `PATH` (a dataset
/// read, changed and written back) keeps its bytes instead of seeing them
/// truncated (SIGBUS), and a writer dropped unfinished leaves no `PATH`.
pub struct TensorWriter {
    path: PathBuf,
    partial: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    height: usize,
    width: usize,
    channels: usize,
    count: usize,
    /// The count promised by [`TensorWriter::with_count`], whose header is written.
    promised: Option<usize>,
}

/// The header of a tensor file, padded with spaces to a multiple of 8
/// bytes (or to `room`): its length, then the JSON.
fn header(count: usize, height: usize, width: usize, channels: usize, room: Option<usize>) -> Vec<u8> {
    let json = serde_json::json!({
        "images": {
            "dtype": "U8",
            "shape": [count, height, width, channels],
            "data_offsets": [0, count * height * width * channels],
        }
    });
    let mut h = serde_json::to_vec(&json).expect("headers serialise");
    let len = match room {
        Some(room) => {
            assert!(h.len() <= room, "a tensor header fits its reserved room");
            room
        }
        None => h.len().next_multiple_of(8),
    };
    h.resize(len, b' ');
    let mut out = (len as u64).to_le_bytes().to_vec();
    out.extend(h);
    out
}

impl TensorWriter {
    /// A file of `count` images, known in advance: the same bytes as
    /// [`ImageTensor::write`] of the same images.
    pub fn with_count(path: &Path, count: usize, height: usize, width: usize, channels: usize) -> Result<TensorWriter, PathError> {
        TensorWriter::open(path, header(count, height, width, channels, None), (height, width, channels), Some(count))
    }

    /// A file of as many images as are pushed: room is kept for the header,
    /// which [`TensorWriter::finish`] writes.
    pub fn create(path: &Path, height: usize, width: usize, channels: usize) -> Result<TensorWriter, PathError> {
        TensorWriter::open(path, header(0, height, width, channels, Some(RESERVED_HEADER)), (height, width, channels), None)
    }

    fn open(path: &Path, header: Vec<u8>, shape: (usize, usize, usize), promised: Option<usize>) -> Result<TensorWriter, PathError> {
        let mut name = path.as_os_str().to_os_string();
        name.push(".partial");
        let partial = PathBuf::from(name);
        let mut file = std::io::BufWriter::with_capacity(1 << 20, fsx::create(&partial)?);
        file.write_all(&header).at("write", &partial)?;
        let (height, width, channels) = shape;
        Ok(TensorWriter { path: path.to_path_buf(), partial, file, height, width, channels, count: 0, promised })
    }

    pub fn image_len(&self) -> usize {
        self.height * self.width * self.channels
    }

    pub fn count(&self) -> usize {
        self.count
    }

    pub fn push(&mut self, pixels: &[u8]) -> Result<(), PathError> {
        assert_eq!(pixels.len(), self.image_len(), "image of the wrong size");
        self.file.write_all(pixels).at("write", &self.partial)?;
        self.count += 1;
        Ok(())
    }

    /// Appends `count` images stored contiguously in `pixels`.
    pub fn push_many(&mut self, pixels: &[u8], count: usize) -> Result<(), PathError> {
        assert_eq!(pixels.len(), count * self.image_len(), "images of the wrong size");
        self.file.write_all(pixels).at("write", &self.partial)?;
        self.count += count;
        Ok(())
    }

    /// Writes the header with the final count (or checks the promised
    /// one) and closes the file.
    pub fn finish(self) -> Result<(), PathError> {
        let TensorWriter { path, partial, file, height, width, channels, count, promised } = self;
        let mut file = file.into_inner().map_err(|e| e.into_error()).at("write", &partial)?;
        match promised {
            Some(n) => assert_eq!(n, count, "a tensor writer got the images it was promised"),
            None => {
                file.seek(SeekFrom::Start(0)).at("write", &partial)?;
                file.write_all(&header(count, height, width, channels, Some(RESERVED_HEADER))).at("write", &partial)?;
            }
        }
        file.flush().at("write", &partial)?;
        drop(file);
        fsx::rename(&partial, &path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = ImageTensor::new(2, 3, 1);
        t.push(&[1, 2, 3, 4, 5, 6]);
        t.push(&[7, 8, 9, 10, 11, 12]);
        let path = dir.path().join("images.safetensors");
        t.write(&path).unwrap();
        let back = ImageTensor::read(&path).unwrap();
        assert!(matches!(back.data, Pixels::Mapped(_)), "read maps the file");
        assert_eq!(back, t);
        assert_eq!(back.image(1), &[7, 8, 9, 10, 11, 12]);
        fsx::write(&path, b"short").unwrap();
        assert!(ImageTensor::read(&path).unwrap_err().to_string().contains("not an image tensor file"));
    }

    #[test]
    fn a_streamed_file_is_a_safetensors_file_with_the_final_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("images.safetensors");
        let mut w = TensorWriter::create(&path, 1, 2, 1).unwrap();
        let mut known = TensorWriter::with_count(&dir.path().join("known.safetensors"), 5, 1, 2, 1).unwrap();
        let mut memory = ImageTensor::new(1, 2, 1);
        for i in 0..5u8 {
            w.push(&[i, i + 100]).unwrap();
            known.push(&[i, i + 100]).unwrap();
            memory.push(&[i, i + 100]);
        }
        w.finish().unwrap();
        known.finish().unwrap();
        memory.write(&dir.path().join("memory.safetensors")).unwrap();
        assert_eq!(
            fsx::read(dir.path().join("known.safetensors")).unwrap(),
            fsx::read(dir.path().join("memory.safetensors")).unwrap(),
            "streamed with a known count: the bytes of a tensor written from memory"
        );
        let bytes = fsx::read(&path).unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!(n % 8, 0, "safetensors wants the data 8-byte aligned");
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        assert_eq!(header["images"]["shape"], serde_json::json!([5, 1, 2, 1]));
        assert_eq!(header["images"]["data_offsets"], serde_json::json!([0, 10]));
        let t = ImageTensor::read(&path).unwrap();
        assert_eq!((t.count, t.image(4)), (5, &[4u8, 104][..]));
        let unfinished = dir.path().join("unfinished.safetensors");
        let mut w = TensorWriter::create(&unfinished, 1, 2, 1).unwrap();
        w.push(&[1, 2]).unwrap();
        drop(w);
        assert!(ImageTensor::read(&unfinished).is_err(), "a file never finished is not a tensor");
        // Rewriting the file a map was read from leaves the map its bytes.
        let mut rewrite = TensorWriter::with_count(&path, 1, 1, 2, 1).unwrap();
        rewrite.push(&[9, 9]).unwrap();
        rewrite.finish().unwrap();
        assert_eq!(t.image(4), &[4u8, 104][..], "the old map still reads the old file");
        assert_eq!(ImageTensor::read(&path).unwrap().image(0), &[9u8, 9][..]);
    }

    #[test]
    fn a_mapped_tensor_hands_back_its_pages_and_still_reads_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("images.safetensors");
        let side = 512; // 1 MiB images: the release threshold is passed every 16 of them
        let mut w = TensorWriter::with_count(&path, 300, side, side, 4).unwrap();
        for i in 0..300usize {
            w.push(&vec![(i % 251) as u8; side * side * 4]).unwrap();
        }
        w.finish().unwrap();
        let t = ImageTensor::read(&path).unwrap();
        let resident = || {
            let status = fsx::read_to_string("/proc/self/status").unwrap();
            let kb =
                status.lines().find_map(|l| l.strip_prefix("RssFile:")).unwrap().trim().trim_end_matches(" kB").trim().parse::<usize>();
            kb.unwrap() * 1024
        };
        let before = resident();
        let mut most = 0;
        for round in 0..2 {
            for i in 0..300usize {
                let img = t.image(i);
                let sum: usize = img.iter().step_by(4096).map(|&b| b as usize).sum();
                assert_eq!(sum, (i % 251) * img.len().div_ceil(4096), "round {round}, image {i}");
                most = most.max(resident().saturating_sub(before));
            }
        }
        eprintln!("most resident of the map: {} MiB", most >> 20);
        assert!(most < RELEASE_BYTES + (32 << 20), "the pages read are handed back: {} MiB resident", most >> 20);
    }
}

//! The entry segment: one append-only file that holds every entry record,
//! and the only thing an acknowledgement depends on.
//!
//! Why our own file and not sled: sled 0.34's `flush` ends in
//! `sync_file_range`, which is no barrier against power loss, and its
//! multi-tree transaction was the append bottleneck. A segment append is
//! one `pwrite` of a whole batch and one `fdatasync`; nothing else is on the
//! path of an acknowledgement (see ARCHITECTURE.md, "Durability").
//!
//! Layout: a 16-byte file header, then frames. A frame is one group-commit
//! batch:
//!
//! ```text
//! magic "CSF1" ‖ first u64 ‖ count u32 ‖ payload_len u32 ‖ crc32 u32
//! payload = count × (record_len u32 ‖ record)
//! ```
//!
//! (big-endian; the CRC covers first, count, payload_len and the payload).
//! A frame is acknowledged only after the `fdatasync` that follows its
//! write returned, and a failed write stops the log, so at most the last
//! frame can be torn. On open a torn last frame is cut off (it was never
//! acknowledged); damage anywhere else is corruption and refuses to open.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::store::{IoFailure, StoreError};

/// The file header: names the format and its version.
pub const SEGMENT_HEADER: &[u8; 16] = b"consentry-seg-v1";
const FRAME_MAGIC: &[u8; 4] = b"CSF1";
/// Bytes of a frame header.
pub const FRAME_HEADER_BYTES: u64 = 24;
/// Largest frame payload. The sequencer's batch byte limit keeps every
/// frame below it; a header that claims more is damage.
pub const FRAME_PAYLOAD_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// How long an open waits for another handle to release the file lock.
const LOCK_WAIT_MS_MAX: u64 = 5_000;

/// Where one record lies in the segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordPos {
    pub offset: u64,
    pub len: u32,
}

impl RecordPos {
    pub fn to_bytes(self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[..8].copy_from_slice(&self.offset.to_be_bytes());
        b[8..].copy_from_slice(&self.len.to_be_bytes());
        b
    }

    pub fn from_bytes(b: &[u8]) -> Result<Self, StoreError> {
        let b: [u8; 12] = b
            .try_into()
            .map_err(|_| StoreError::Corrupt("record position is not 12 bytes".into()))?;
        let mut off = [0u8; 8];
        off.copy_from_slice(&b[..8]);
        let mut len = [0u8; 4];
        len.copy_from_slice(&b[8..]);
        Ok(Self {
            offset: u64::from_be_bytes(off),
            len: u32::from_be_bytes(len),
        })
    }
}

/// What a scan of the file found past a known-good point.
#[derive(Debug, Default)]
pub struct Scan {
    /// Entries in the valid frames, in index order.
    pub records: Vec<RecordPos>,
    /// End of the last valid frame.
    pub end: u64,
    /// Bytes past `end` that form no complete valid frame (a torn tail).
    pub torn_bytes: u64,
}

/// An open segment file. Reads are positional and run from any thread,
/// even while an append waits for its sync; appends take turns.
pub struct Segment {
    file: File,
    /// End of the last durable frame: where the next frame goes.
    end: AtomicU64,
    /// Entries in the file.
    size: AtomicU64,
    writable: bool,
    appending: Mutex<()>,
}

fn io(what: &str, e: std::io::Error) -> StoreError {
    StoreError::Io(IoFailure::new(what, e))
}

fn be_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}

fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

fn frame_crc(first: u64, count: u32, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&first.to_be_bytes());
    h.update(&count.to_be_bytes());
    h.update(&(payload.len() as u32).to_be_bytes());
    h.update(payload);
    h.finalize()
}

/// Builds one frame for records `first..first + records.len()`; returns the
/// frame and each record's offset relative to the frame's start.
pub fn encode_frame(
    first: u64,
    records: &[Vec<u8>],
) -> Result<(Vec<u8>, Vec<RecordPos>), StoreError> {
    let payload_len: usize = records.iter().map(|r| 4 + r.len()).sum();
    if payload_len as u64 > FRAME_PAYLOAD_BYTES_MAX {
        return Err(StoreError::Io(IoFailure::message(format!(
            "batch of {payload_len} bytes is over the frame limit of {FRAME_PAYLOAD_BYTES_MAX}"
        ))));
    }
    let count = u32::try_from(records.len())
        .map_err(|_| StoreError::Io(IoFailure::message("too many records in one batch")))?;
    let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES as usize + payload_len);
    frame.extend_from_slice(FRAME_MAGIC);
    frame.extend_from_slice(&first.to_be_bytes());
    frame.extend_from_slice(&count.to_be_bytes());
    frame.extend_from_slice(&(payload_len as u32).to_be_bytes());
    frame.extend_from_slice(&[0u8; 4]);
    let mut pos = Vec::with_capacity(records.len());
    for r in records {
        frame.extend_from_slice(&(r.len() as u32).to_be_bytes());
        pos.push(RecordPos {
            offset: frame.len() as u64,
            len: r.len() as u32,
        });
        frame.extend_from_slice(r);
    }
    let crc = frame_crc(first, count, &frame[FRAME_HEADER_BYTES as usize..]);
    frame[20..24].copy_from_slice(&crc.to_be_bytes());
    Ok((frame, pos))
}

impl Segment {
    /// Opens (creating if absent) the segment for appending, holding an
    /// exclusive lock so that no second writer can interleave.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let existed = path.exists();
        let file = std::os::unix::fs::OpenOptionsExt::mode(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
            0o600,
        )
        .open(path)
        .map_err(|e| io("cannot open the entry segment", e))?;
        lock(&file, true)?;
        let len = file
            .metadata()
            .map_err(|e| io("cannot stat the entry segment", e))?
            .len();
        if len == 0 {
            file.write_all_at(SEGMENT_HEADER, 0)
                .map_err(|e| io("cannot write the segment header", e))?;
            file.sync_all()
                .map_err(|e| io("cannot sync the segment header", e))?;
            if !existed {
                sync_dir(path)?;
            }
        }
        Ok(Self::new(file, true))
    }

    /// Opens an existing segment for reading only, under a shared lock: it
    /// fails while a writer holds the file, so a check never reads a log
    /// that is still growing.
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        let file = File::open(path).map_err(|e| io("cannot open the entry segment", e))?;
        lock(&file, false)?;
        Ok(Self::new(file, false))
    }

    /// Opens a segment to look at, without any lock, even while a gateway
    /// appends to it: frames are never rewritten, so what [`Segment::recover`]
    /// finds whole is final; a frame still being written is skipped as a
    /// torn tail. For viewers (`consentry log tail`), never for checks.
    pub fn open_snapshot(path: &Path) -> Result<Self, StoreError> {
        let file = File::open(path).map_err(|e| io("cannot open the entry segment", e))?;
        Ok(Self::new(file, false))
    }

    fn new(file: File, writable: bool) -> Self {
        Self {
            file,
            end: AtomicU64::new(SEGMENT_HEADER.len() as u64),
            size: AtomicU64::new(0),
            writable,
            appending: Mutex::new(()),
        }
    }

    /// Entries in the file (after [`Segment::recover`]).
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    /// Byte offset where the next frame goes.
    pub fn end(&self) -> u64 {
        self.end.load(Ordering::Acquire)
    }

    /// Checks the header, then scans the frames after `from` (a frame
    /// boundary holding entry `from_index`, e.g. where derived data ends).
    /// A writable segment cuts a torn tail and then syncs the whole file,
    /// so that nothing the next append builds on can still be lost (after
    /// a failed `fdatasync` the page cache may hold bytes that never
    /// reached the disk). Damage before the tail is refused.
    pub fn recover(&mut self, from: u64, from_index: u64) -> Result<Scan, StoreError> {
        let len = self
            .file
            .metadata()
            .map_err(|e| io("cannot stat the entry segment", e))?
            .len();
        let mut header = [0u8; 16];
        self.file
            .read_exact_at(&mut header, 0)
            .map_err(|e| StoreError::Corrupt(format!("segment header unreadable: {e}")))?;
        if &header != SEGMENT_HEADER {
            return Err(StoreError::Corrupt("not a consentry entry segment".into()));
        }
        let from = from.max(SEGMENT_HEADER.len() as u64);
        if from > len {
            return Err(StoreError::Corrupt(format!(
                "derived data ends at byte {from} but the segment holds only {len}: entries were lost"
            )));
        }
        let mut scan = Scan {
            end: from,
            ..Scan::default()
        };
        let mut at = from;
        let mut index = from_index;
        loop {
            if at == len {
                break;
            }
            match self.read_frame(at, len, index) {
                Ok((next, records)) => {
                    index += records.len() as u64;
                    scan.records.extend(records);
                    at = next;
                    scan.end = at;
                }
                Err(claimed) => {
                    // Only the last frame can be torn: anything longer than
                    // one frame past this point is damage, not a torn write.
                    let tail = len - at;
                    let bound = FRAME_HEADER_BYTES + claimed.unwrap_or(FRAME_PAYLOAD_BYTES_MAX);
                    if tail > bound {
                        return Err(StoreError::Damaged {
                            index,
                            detail: format!(
                                "the frame at byte {at} is damaged and {tail} bytes follow it"
                            ),
                        });
                    }
                    scan.torn_bytes = tail;
                    break;
                }
            }
        }
        if self.writable {
            if scan.torn_bytes > 0 {
                self.file
                    .set_len(scan.end)
                    .map_err(|e| io("cannot cut the torn segment tail", e))?;
            }
            self.file
                .sync_all()
                .map_err(|e| io("cannot sync the entry segment", e))?;
        }
        self.end.store(scan.end, Ordering::Release);
        self.size.store(index, Ordering::Release);
        Ok(scan)
    }

    /// Reads and checks the frame at `at`; on failure returns the payload
    /// length its header claims, if the header itself is intact.
    fn read_frame(
        &self,
        at: u64,
        len: u64,
        index: u64,
    ) -> Result<(u64, Vec<RecordPos>), Option<u64>> {
        if len - at < FRAME_HEADER_BYTES {
            return Err(None);
        }
        let mut h = [0u8; FRAME_HEADER_BYTES as usize];
        self.file.read_exact_at(&mut h, at).map_err(|_| None)?;
        if &h[..4] != FRAME_MAGIC {
            return Err(None);
        }
        let first = be_u64(&h[4..]);
        let count = be_u32(&h[12..]);
        let payload_len = u64::from(be_u32(&h[16..]));
        let crc = be_u32(&h[20..]);
        if first != index || payload_len > FRAME_PAYLOAD_BYTES_MAX {
            return Err(None);
        }
        if len - at - FRAME_HEADER_BYTES < payload_len {
            return Err(Some(payload_len));
        }
        let mut payload = vec![0u8; payload_len as usize];
        self.file
            .read_exact_at(&mut payload, at + FRAME_HEADER_BYTES)
            .map_err(|_| Some(payload_len))?;
        if frame_crc(first, count, &payload) != crc {
            return Err(Some(payload_len));
        }
        let mut records = Vec::with_capacity(count as usize);
        let mut p = 0usize;
        for _ in 0..count {
            if payload.len() - p < 4 {
                return Err(Some(payload_len));
            }
            let n = be_u32(&payload[p..]) as usize;
            p += 4;
            if payload.len() - p < n {
                return Err(Some(payload_len));
            }
            records.push(RecordPos {
                offset: at + FRAME_HEADER_BYTES + p as u64,
                len: n as u32,
            });
            p += n;
        }
        if p != payload.len() {
            return Err(Some(payload_len));
        }
        Ok((at + FRAME_HEADER_BYTES + payload_len, records))
    }

    /// Writes one frame for entries `first..` and returns after the
    /// `fdatasync` that makes it durable returned. On any error the
    /// outcome is unknown until the segment is reopened and recovered.
    pub fn append(&self, first: u64, records: &[Vec<u8>]) -> Result<Vec<RecordPos>, StoreError> {
        if !self.writable {
            return Err(StoreError::Io(IoFailure::message(
                "the segment is open read-only",
            )));
        }
        let _turn = self.appending.lock().unwrap_or_else(|p| p.into_inner());
        let size = self.size();
        if first != size {
            return Err(StoreError::OutOfOrder { got: first, size });
        }
        let end = self.end();
        let (frame, mut pos) = encode_frame(first, records)?;
        self.file
            .write_all_at(&frame, end)
            .map_err(|e| io("cannot write to the entry segment", e))?;
        self.file
            .sync_data()
            .map_err(|e| io("cannot fdatasync the entry segment", e))?;
        for p in &mut pos {
            p.offset += end;
        }
        // Readers may now see the frame: its bytes are durable.
        self.end.store(end + frame.len() as u64, Ordering::Release);
        self.size
            .store(size + records.len() as u64, Ordering::Release);
        Ok(pos)
    }

    /// The record at `pos`.
    pub fn read(&self, pos: RecordPos) -> Result<Vec<u8>, StoreError> {
        let end = self.end();
        if pos.offset.saturating_add(u64::from(pos.len)) > end {
            return Err(StoreError::Corrupt(format!(
                "record position {} + {} lies past the segment end {end}",
                pos.offset, pos.len
            )));
        }
        let mut buf = vec![0u8; pos.len as usize];
        self.file
            .read_exact_at(&mut buf, pos.offset)
            .map_err(|e| io("cannot read the entry segment", e))?;
        Ok(buf)
    }
}

/// Takes the file lock. A writer waits briefly, since a handle closing in
/// this process (a restart) lets go a moment later; a reader asks once, so
/// that a check against a running gateway fails at once.
fn lock(file: &File, exclusive: bool) -> Result<(), StoreError> {
    let mut waited_ms = if exclusive { 0 } else { LOCK_WAIT_MS_MAX };
    loop {
        let got = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match got {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if waited_ms < LOCK_WAIT_MS_MAX => {
                std::thread::sleep(std::time::Duration::from_millis(10));
                waited_ms += 10;
            }
            Err(std::fs::TryLockError::WouldBlock) => return Err(StoreError::Locked),
            Err(std::fs::TryLockError::Error(e)) => return Err(io("cannot lock the segment", e)),
        }
    }
}

/// Makes a new file's directory entry durable.
pub fn sync_dir(path: &Path) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    match File::open(dir).and_then(|d| d.sync_all()) {
        Ok(()) => Ok(()),
        // Some filesystems refuse fsync on a directory; the entry is then
        // as durable as that filesystem can make it.
        Err(e) if e.kind() == ErrorKind::InvalidInput => Ok(()),
        Err(e) => Err(io("cannot sync the data directory", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs(n: usize, tag: u8) -> Vec<Vec<u8>> {
        (0..n).map(|i| vec![tag; 10 + i]).collect()
    }

    #[test]
    fn append_reopen_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("entries");
        let mut s = Segment::open(&path).unwrap();
        s.recover(0, 0).unwrap();
        let p1 = s.append(0, &recs(3, 1)).unwrap();
        let p2 = s.append(3, &recs(2, 2)).unwrap();
        assert!(s.append(9, &recs(1, 3)).is_err());
        assert_eq!(s.read(p1[2]).unwrap(), vec![1; 12]);
        drop(s);
        let mut s = Segment::open(&path).unwrap();
        let scan = s.recover(0, 0).unwrap();
        assert_eq!(scan.records.len(), 5);
        assert_eq!(scan.records[3], p2[0]);
        assert_eq!(scan.torn_bytes, 0);
        assert_eq!(s.size(), 5);
        // Scanning from a frame boundary finds only what follows it.
        let mut s2 = Segment::open_read_only(&path);
        assert!(s2.is_err(), "a writer holds the lock");
        drop(s);
        s2 = Segment::open_read_only(&path);
        let mut s2 = s2.unwrap();
        let from = p2[0].offset - 4 - FRAME_HEADER_BYTES;
        let scan = s2.recover(from, 3).unwrap();
        assert_eq!(scan.records, p2);
    }

    #[test]
    fn torn_tail_is_cut_and_damage_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("entries");
        let mut s = Segment::open(&path).unwrap();
        s.recover(0, 0).unwrap();
        s.append(0, &recs(3, 1)).unwrap();
        let good_end = s.end();
        s.append(3, &recs(4, 2)).unwrap();
        let full_end = s.end();
        drop(s);
        // A torn last frame: cut its last bytes.
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(full_end - 5).unwrap();
        drop(f);
        let mut s = Segment::open(&path).unwrap();
        let scan = s.recover(0, 0).unwrap();
        assert_eq!((s.size(), scan.end), (3, good_end));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good_end);
        s.append(3, &recs(4, 2)).unwrap();
        s.append(7, &recs(1, 3)).unwrap();
        drop(s);
        // A flipped byte in a frame that is not the last: damage.
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        f.write_all_at(&[0xff], good_end + 30).unwrap();
        drop(f);
        // The damaged frame's header is intact and a whole frame follows it,
        // so this cannot be a torn write: refuse rather than cut.
        let mut s = Segment::open(&path).unwrap();
        let err = s.recover(0, 0).unwrap_err();
        assert!(matches!(err, StoreError::Damaged { index: 3, .. }), "{err}");
        assert!(err.to_string().contains("damaged"), "{err}");
        drop(s);
        assert!(
            std::fs::metadata(&path).unwrap().len() > good_end,
            "nothing was cut"
        );
    }

    #[test]
    fn zeroed_tail_is_torn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("entries");
        let mut s = Segment::open(&path).unwrap();
        s.recover(0, 0).unwrap();
        s.append(0, &recs(2, 1)).unwrap();
        let end = s.end();
        drop(s);
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&[0u8; 4096], end).unwrap();
        drop(f);
        let mut s = Segment::open(&path).unwrap();
        let scan = s.recover(0, 0).unwrap();
        assert_eq!((scan.end, scan.torn_bytes, s.size()), (end, 4096, 2));
    }
}

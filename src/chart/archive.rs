//! Reading a packaged chart (`.tgz`) safely.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{self, Read};

use flate2::read::MultiGzDecoder;

use super::{ChartError, ChartFiles, Limits, is_drive_path};

/// Largest GNU long-name/long-link or PAX record block accepted; the same
/// bound as Go's `archive/tar` (which Helm uses).
const MAX_EXTENSION_BYTES: u64 = 1024 * 1024;

/// Allowance for tar headers and padding on top of the file data when
/// bounding the whole decompressed stream.
const STREAM_SLACK_BYTES: u64 = 1024 * 1024;

/// Reads a packaged chart from memory.
///
/// All file entries must live under one top-level directory `<name>/`; the
/// result is that name and the files relative to it. Directory entries are
/// skipped. PAX (`path`) and GNU long names are understood; PAX global
/// headers are skipped, as in Helm.
///
/// Checks, beyond those of Helm's loader (`pkg/chart/loader/archive`):
///
/// * gzip magic first ([`ChartError::NotGzip`]); concatenated gzip members
///   are read as one stream, as Go's gzip reader does;
/// * absolute, drive-qualified or `..` paths: [`ChartError::PathTraversal`]
///   (Helm resolves an inner `..` that stays inside; this refuses any);
/// * symlinks, hard links, devices, FIFOs, sparse files, unknown entry types;
/// * sizes: a file's declared size is checked against `max_file_bytes` and
///   what is left of `max_total_bytes` *before* its data is read, and file
///   data is counted again as it is read; the whole decompressed stream
///   (headers, skipped data and padding too) is capped at twice
///   `max_total_bytes` plus 1 MiB, so a gzip bomb is stopped after at most
///   that many bytes of output and nothing unbounded is allocated;
/// * layout: one top-level directory, no file at the top level or as the top
///   directory itself, no duplicate file, no path both file and directory,
///   at least one file;
/// * integrity: the rest of the stream after the tar end marker is read so
///   the gzip checksum is verified, and must be zero padding only.
///
/// Names have `\` turned into `/` (archives written on Windows), as Helm
/// does; empty and `.` components are dropped, as Helm's `path.Clean` does.
/// File contents are returned byte-for-byte (Helm strips a UTF-8 BOM when it
/// loads a file; this does not).
pub fn read_archive(bytes: &[u8], limits: &Limits) -> Result<(String, ChartFiles), ChartError> {
    if !bytes.starts_with(&[0x1f, 0x8b, 0x08]) {
        return Err(ChartError::NotGzip);
    }
    let stream_limit = limits
        .max_total_bytes
        .saturating_mul(2)
        .saturating_add(STREAM_SLACK_BYTES);
    let exceeded = Cell::new(false);
    let stream = Budget {
        inner: MultiGzDecoder::new(bytes),
        remaining: stream_limit,
        exceeded: &exceeded,
    };
    let fail = |err: io::Error, path: Option<String>| {
        stream_error(err, exceeded.get(), stream_limit, path)
    };

    let mut archive = tar::Archive::new(stream);
    let mut state = State::new(limits);
    {
        let entries = archive.entries().map_err(|e| fail(e, None))?.raw(true);
        for entry in entries {
            let entry = entry.map_err(|e| fail(e, None))?;
            state.accept(entry, &fail)?;
        }
    }
    if state.pending.is_some() {
        return Err(ChartError::Corrupt {
            path: None,
            detail: "extended header without a following entry".to_string(),
        });
    }
    let mut rest = archive.into_inner();
    check_trailer(&mut rest).map_err(|e| fail(e, None))?;
    state.finish()
}

/// Errors from the decompressed stream: the size cap, or damaged data.
fn stream_error(err: io::Error, exceeded: bool, limit: u64, path: Option<String>) -> ChartError {
    if exceeded {
        ChartError::TooLarge { path: None, limit }
    } else {
        ChartError::Corrupt {
            path,
            detail: err.to_string(),
        }
    }
}

/// Reads what follows the end-of-archive marker: must be zeros (padding).
fn check_trailer(reader: &mut impl Read) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        if buf.get(..n).unwrap_or_default().iter().any(|&b| b != 0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "data after the end-of-archive marker",
            ));
        }
    }
}

/// A reader that fails once more than `remaining` bytes come through.
struct Budget<'a, R> {
    inner: R,
    remaining: u64,
    exceeded: &'a Cell<bool>,
}

impl<R: Read> Read for Budget<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Ask for one byte past the budget so that exceeding it is noticed.
        let allowed = usize::try_from(self.remaining.saturating_add(1)).unwrap_or(usize::MAX);
        let want = buf.len().min(allowed);
        let n = self.inner.read(buf.get_mut(..want).unwrap_or_default())?;
        let got = u64::try_from(n).unwrap_or(u64::MAX);
        if got > self.remaining {
            self.exceeded.set(true);
            self.remaining = 0;
            return Err(io::Error::other("decompressed size limit exceeded"));
        }
        self.remaining = self.remaining.saturating_sub(got);
        Ok(n)
    }
}

/// GNU long-name/long-link and PAX records waiting for the entry they
/// describe.
#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
}

impl Pending {
    fn is_some(&self) -> bool {
        self.long_name.is_some() || self.long_link.is_some() || self.pax.is_some()
    }
}

/// What an entry's PAX records say that matters here.
#[derive(Default)]
struct PaxInfo {
    path: Option<Vec<u8>>,
    size: Option<u64>,
    sparse: bool,
}

enum Kind {
    File,
    Dir,
}

struct State<'l> {
    limits: &'l Limits,
    remaining: u64,
    top: Option<String>,
    files: BTreeMap<String, Vec<u8>>,
    pending: Pending,
}

impl<'l> State<'l> {
    fn new(limits: &'l Limits) -> Self {
        State {
            limits,
            remaining: limits.max_total_bytes,
            top: None,
            files: BTreeMap::new(),
            pending: Pending::default(),
        }
    }

    fn accept<R: Read>(
        &mut self,
        mut entry: tar::Entry<'_, R>,
        fail: &impl Fn(io::Error, Option<String>) -> ChartError,
    ) -> Result<(), ChartError> {
        let type_flag = entry.header().as_old().linkflag[0];
        let declared = entry.size();

        // Extension headers describe the next entry.
        let slot = match type_flag {
            b'L' => Some(&mut self.pending.long_name),
            b'K' => Some(&mut self.pending.long_link),
            b'x' => Some(&mut self.pending.pax),
            b'g' => None,
            _ => {
                return self.accept_member(entry, fail);
            }
        };
        if declared > MAX_EXTENSION_BYTES {
            return Err(ChartError::Corrupt {
                path: None,
                detail: format!("extended header of {declared} bytes is too long"),
            });
        }
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(|e| fail(e, None))?;
        if u64::try_from(data.len()).unwrap_or(u64::MAX) != declared {
            return Err(ChartError::Corrupt {
                path: None,
                detail: "truncated extended header".to_string(),
            });
        }
        match slot {
            Some(slot) if slot.is_some() => Err(ChartError::Corrupt {
                path: None,
                detail: "two extended headers of the same kind for one entry".to_string(),
            }),
            Some(slot) => {
                *slot = Some(data);
                Ok(())
            }
            // PAX global headers are skipped, as Helm does.
            None => Ok(()),
        }
    }

    fn accept_member<R: Read>(
        &mut self,
        mut entry: tar::Entry<'_, R>,
        fail: &impl Fn(io::Error, Option<String>) -> ChartError,
    ) -> Result<(), ChartError> {
        let pending = std::mem::take(&mut self.pending);
        let header = entry.header();
        let type_flag = header.as_old().linkflag[0];
        let header_name = header.path_bytes().into_owned();

        let pax = match &pending.pax {
            Some(records) => parse_pax(records).map_err(|detail| ChartError::Corrupt {
                path: Some(lossy(&header_name)),
                detail: detail.to_string(),
            })?,
            None => PaxInfo::default(),
        };
        let long_name = pending.long_name.map(cut_at_nul);
        let raw_name = match (long_name, pax.path) {
            (Some(long), Some(pax_path)) if long != pax_path => {
                return Err(ChartError::Corrupt {
                    path: Some(lossy(&header_name)),
                    detail: "GNU long name and PAX path disagree".to_string(),
                });
            }
            (Some(long), _) if !long.is_empty() => long,
            (_, Some(pax_path)) => pax_path,
            _ => header_name,
        };
        let shown = lossy(&raw_name);
        let corrupt = |detail: &str| ChartError::Corrupt {
            path: Some(shown.clone()),
            detail: detail.to_string(),
        };

        let name = std::str::from_utf8(&raw_name).map_err(|_| ChartError::InvalidName {
            path: shown.clone(),
            detail: "entry name is not valid UTF-8".to_string(),
        })?;
        let (top, rel) = split_entry_name(name)?;

        let mode =
            parse_numeric(&header.as_old().mode).ok_or_else(|| corrupt("malformed mode field"))?;
        let size = header
            .entry_size()
            .map_err(|_| corrupt("malformed size field"))?;
        if pax.size.is_some_and(|pax_size| pax_size != size) {
            return Err(corrupt("PAX size record differs from the header size"));
        }
        if pax.sparse {
            return Err(ChartError::SpecialFile {
                path: shown,
                kind: "sparse file".to_string(),
            });
        }
        let kind = match type_flag {
            b'0' | b'7' => Kind::File,
            // Old-style (pre-POSIX) entries mark directories with a slash.
            b'\0' if name.ends_with('/') => Kind::Dir,
            b'\0' => Kind::File,
            b'5' => Kind::Dir,
            b'1' => return Err(ChartError::Hardlink { path: shown }),
            b'2' => return Err(ChartError::Symlink { path: shown }),
            other => {
                return Err(ChartError::SpecialFile {
                    path: shown,
                    kind: special_kind(other),
                });
            }
        };
        // Helm's loader goes by Go's FileInfo, which also calls an entry a
        // directory when its mode has the directory type bits.
        let kind = match kind {
            Kind::File if mode & 0o170_000 == 0o040_000 => Kind::Dir,
            other => other,
        };
        if let Kind::Dir = kind {
            // Nothing to keep; its data (if any) is skipped but still
            // counted by the stream budget.
            return Ok(());
        }

        if top.is_empty() || top == "." || rel.is_empty() {
            return Err(ChartError::OutsideTopDir { path: shown });
        }
        match &self.top {
            None => self.top = Some(top.to_string()),
            Some(first) if first != top => {
                return Err(ChartError::MultipleTopDirs {
                    first: first.clone(),
                    second: top.to_string(),
                    path: shown,
                });
            }
            Some(_) => {}
        }
        if size > self.limits.max_file_bytes {
            return Err(ChartError::FileTooLarge {
                path: shown,
                size,
                limit: self.limits.max_file_bytes,
            });
        }
        if size > self.remaining {
            return Err(ChartError::TooLarge {
                path: Some(shown),
                limit: self.limits.max_total_bytes,
            });
        }
        if self.files.contains_key(&rel) {
            return Err(ChartError::Duplicate { path: shown });
        }

        // `size` is within the limits checked above; grow from a modest
        // start rather than trusting it for one big allocation.
        let start = usize::try_from(size.min(1024 * 1024)).unwrap_or(0);
        let mut data = Vec::with_capacity(start);
        (&mut entry)
            .take(size)
            .read_to_end(&mut data)
            .map_err(|e| fail(e, Some(shown.clone())))?;
        let got = u64::try_from(data.len()).unwrap_or(u64::MAX);
        if got != size {
            return Err(corrupt("file data is truncated"));
        }
        self.remaining = self.remaining.saturating_sub(got);
        self.files.insert(rel, data);
        Ok(())
    }

    fn finish(self) -> Result<(String, ChartFiles), ChartError> {
        let Some(top) = self.top else {
            return Err(ChartError::Empty);
        };
        for name in self.files.keys() {
            let prefix = format!("{name}/");
            let clash = self
                .files
                .range(prefix.clone()..)
                .next()
                .is_some_and(|(other, _)| other.starts_with(&prefix));
            if clash {
                return Err(ChartError::FileDirConflict {
                    path: format!("{top}/{name}"),
                });
            }
        }
        Ok((top, ChartFiles { files: self.files }))
    }
}

/// Splits an entry name into its top-level directory and the canonical path
/// below it, refusing anything that could escape the chart.
fn split_entry_name(name: &str) -> Result<(&str, String), ChartError> {
    let traversal = || ChartError::PathTraversal {
        path: name.to_string(),
    };
    if name.starts_with('/') || name.starts_with('\\') {
        return Err(traversal());
    }
    let mut parts = name.split(['/', '\\']);
    let top = parts.next().unwrap_or_default();
    if top == ".." || (top.len() == 2 && is_drive_path(&format!("{top}/"))) {
        return Err(traversal());
    }
    let mut rel = String::new();
    for part in parts {
        match part {
            "" | "." => {}
            ".." => return Err(traversal()),
            _ => {
                if !rel.is_empty() {
                    rel.push('/');
                }
                rel.push_str(part);
            }
        }
    }
    if is_drive_path(&rel) {
        return Err(traversal());
    }
    if rel.contains('\0') {
        return Err(ChartError::InvalidName {
            path: name.to_string(),
            detail: "contains a NUL byte".to_string(),
        });
    }
    if rel.starts_with("..") {
        return Err(ChartError::InvalidName {
            path: name.to_string(),
            detail: "starts with `..`, which Helm's archive loader refuses".to_string(),
        });
    }
    Ok((top, rel))
}

/// Parses PAX extended header records (`"<len> <key>=<value>\n"`).
fn parse_pax(mut data: &[u8]) -> Result<PaxInfo, &'static str> {
    let mut info = PaxInfo::default();
    while !data.is_empty() {
        let space = data
            .iter()
            .position(|&b| b == b' ')
            .ok_or("malformed PAX record")?;
        let digits = data.get(..space).unwrap_or_default();
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) || digits.len() > 18 {
            return Err("malformed PAX record length");
        }
        let len = digits
            .iter()
            .try_fold(0usize, |acc, &d| {
                acc.checked_mul(10)?.checked_add(usize::from(d - b'0'))
            })
            .ok_or("malformed PAX record length")?;
        if len <= space + 1 || len > data.len() {
            return Err("malformed PAX record length");
        }
        let (record, rest) = data.split_at(len);
        data = rest;
        let body = record
            .get(space + 1..)
            .and_then(|b| b.strip_suffix(b"\n"))
            .ok_or("PAX record does not end with a newline")?;
        let eq = body
            .iter()
            .position(|&b| b == b'=')
            .ok_or("PAX record without `=`")?;
        let (key, value) = (
            body.get(..eq).unwrap_or_default(),
            body.get(eq + 1..).unwrap_or_default(),
        );
        if key.is_empty() {
            return Err("PAX record with an empty key");
        }
        match key {
            b"path" => {
                if value.contains(&0) {
                    return Err("PAX path contains a NUL byte");
                }
                info.path = Some(value.to_vec());
            }
            b"size" => {
                let text = std::str::from_utf8(value).map_err(|_| "malformed PAX size")?;
                info.size = Some(text.parse().map_err(|_| "malformed PAX size")?);
            }
            _ if key.starts_with(b"GNU.sparse.") => info.sparse = true,
            _ => {}
        }
    }
    Ok(info)
}

/// A numeric header field read as Go's `archive/tar` does: base-256 when the
/// high bit is set, otherwise octal with surrounding spaces and NULs trimmed,
/// where an empty field means 0.
fn parse_numeric(field: &[u8]) -> Option<u64> {
    if let Some((&first, rest)) = field.split_first()
        && first & 0x80 != 0
    {
        if first & 0x40 != 0 {
            return None; // negative
        }
        return rest.iter().try_fold(u64::from(first & 0x3f), |acc, &b| {
            acc.checked_mul(256)?.checked_add(u64::from(b))
        });
    }
    let is_pad = |b: &u8| *b == b' ' || *b == 0;
    let start = field.iter().position(|b| !is_pad(b)).unwrap_or(field.len());
    let end = field
        .iter()
        .rposition(|b| !is_pad(b))
        .map_or(start, |i| i + 1);
    let digits = field.get(start..end).unwrap_or_default();
    if digits.is_empty() {
        return Some(0);
    }
    let digits = digits.split(|&b| b == 0).next().unwrap_or_default();
    let text = std::str::from_utf8(digits).ok()?;
    u64::from_str_radix(text, 8).ok()
}

/// A GNU long name ends at its first NUL (as Go's reader takes it).
fn cut_at_nul(mut bytes: Vec<u8>) -> Vec<u8> {
    if let Some(nul) = bytes.iter().position(|&b| b == 0) {
        bytes.truncate(nul);
    }
    bytes
}

fn special_kind(type_flag: u8) -> String {
    match type_flag {
        b'3' => "character device".to_string(),
        b'4' => "block device".to_string(),
        b'6' => "FIFO".to_string(),
        b'S' => "sparse file".to_string(),
        b'D' => "GNU dump directory".to_string(),
        b'V' => "volume label".to_string(),
        b'M' => "multi-volume continuation".to_string(),
        other if other.is_ascii_graphic() => {
            format!("tar entry of unsupported type `{}`", char::from(other))
        }
        other => format!("tar entry of unsupported type 0x{other:02x}"),
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_fields_parse_like_go() {
        assert_eq!(parse_numeric(b"0000644\0"), Some(0o644));
        assert_eq!(parse_numeric(b" 644 \0\0"), Some(0o644));
        assert_eq!(parse_numeric(b"\0\0\0\0\0\0\0\0"), Some(0));
        assert_eq!(
            parse_numeric(&[0x80, 0, 0, 0, 0, 0, 0x01, 0xa4]),
            Some(0o644)
        );
        assert_eq!(parse_numeric(b"64x\0"), None);
        assert_eq!(parse_numeric(&[0xff; 8]), None);
    }

    #[test]
    fn pax_records_parse() {
        let info = parse_pax(b"15 path=a/b/cd\n11 size=42\n").unwrap();
        assert_eq!(info.path.as_deref(), Some(&b"a/b/cd"[..]));
        assert_eq!(info.size, Some(42));
        // A value may contain a newline: lengths, not lines, delimit records.
        let info = parse_pax(b"12 path=a\nb\n").unwrap();
        assert_eq!(info.path.as_deref(), Some(&b"a\nb"[..]));
        assert!(parse_pax(b"30 path=short\n").is_err());
        assert!(parse_pax(b"x path=a\n").is_err());
        assert!(parse_pax(b"99999999999999999999999 path=a\n").is_err());
        assert!(parse_pax(b"22 GNU.sparse.major=1\n").unwrap().sparse);
    }

    #[test]
    fn entry_names_split() {
        assert_eq!(
            split_entry_name("demo/./a//b").unwrap(),
            ("demo", "a/b".to_string())
        );
        assert_eq!(
            split_entry_name("demo\\a").unwrap(),
            ("demo", "a".to_string())
        );
        assert!(split_entry_name("C:/x/y").is_err());
        assert!(split_entry_name("\\x").is_err());
    }
}

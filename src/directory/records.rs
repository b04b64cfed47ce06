//! CSV records that survive bad ones.
//!
//! The csv crate stops at the first invalid UTF-8 byte, and a stray `"` at
//! the start of a field opens a quoted field that swallows every line up to
//! the next quote: one bad record cost a whole file. Here the file is first
//! cut into records by line, following quotes only as far as a record may
//! reasonably span ([`MAX_RECORD_LINES`]); each record is then checked and
//! parsed on its own by the csv crate. A bad record is reported with its line
//! and reading goes on at the line after it. Only a failure to read the file
//! itself (an I/O error) ends the reading.

use std::io::BufRead;

/// Most physical lines one record may span (a quoted field with line breaks).
/// A quote still open after that is taken for a stray one.
const MAX_RECORD_LINES: usize = 16;

/// One record: its first line, and its fields or why it could not be read.
pub type Record = (u64, Result<csv::StringRecord, String>);

pub struct Records<R> {
    input: R,
    /// Lines read ahead while following an open quote, not yet used.
    pending: std::collections::VecDeque<Vec<u8>>,
    /// The number of the next line to hand out.
    line: u64,
    /// Bytes of the input consumed so far (for progress).
    pub bytes: u64,
}

impl<R: BufRead> Records<R> {
    pub fn new(input: R) -> Records<R> {
        Records { input, pending: Default::default(), line: 1, bytes: 0 }
    }

    fn next_line(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        if let Some(l) = self.pending.pop_front() {
            return Ok(Some(l));
        }
        let mut buf = Vec::new();
        if self.input.read_until(b'\n', &mut buf)? == 0 {
            return Ok(None);
        }
        self.bytes += buf.len() as u64;
        Ok(Some(buf))
    }

    /// The next record, `None` at the end, or the error that stopped reading.
    pub fn next_record(&mut self) -> std::io::Result<Option<Record>> {
        loop {
            let Some(first) = self.next_line()? else { return Ok(None) };
            let start = self.line;
            self.line += 1;
            if is_blank(&first) {
                continue;
            }
            let mut raw = first;
            let mut extra = Vec::new();
            // Within one line the csv crate's leniency decides; across lines
            // the quoting must be sound, or the first quote was a stray.
            let mut state = match quoting(&raw, false) {
                Quoting::Open => Quoting::Open,
                _ => Quoting::Closed,
            };
            while state == Quoting::Open && extra.len() + 1 < MAX_RECORD_LINES {
                let Some(more) = self.next_line()? else { break };
                state = quoting(&more, true);
                extra.push(more);
            }
            if state != Quoting::Closed {
                // A stray quote: this line is bad, the ones read ahead are
                // records of their own.
                for l in extra.into_iter().rev() {
                    self.pending.push_front(l);
                }
                return Ok(Some((start, Err("a quoted field is never closed (a stray \")".to_string()))));
            }
            self.line += extra.len() as u64;
            for l in extra {
                raw.extend(l);
            }
            return Ok(Some((start, parse(&raw))));
        }
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|b| b.is_ascii_whitespace())
}

/// How a line leaves the record's quoting.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Quoting {
    Closed,
    /// The line ends inside a quoted field.
    Open,
    /// A quote closed a field and something other than a separator or the
    /// end of the line followed: the quote that opened it was no field's.
    Malformed,
}

/// How `line` ends, starting inside a quoted field or not. A quote opens a
/// field only at its start (as the csv crate reads it); inside, `""` is a
/// quote and `"` closes.
fn quoting(line: &[u8], mut inside: bool) -> Quoting {
    let mut field_start = !inside;
    let mut malformed = false;
    let mut i = 0;
    while i < line.len() {
        let c = line[i];
        if inside {
            if c == b'"' {
                match line.get(i + 1) {
                    Some(b'"') => {
                        i += 2;
                        continue;
                    }
                    None | Some(b',' | b'\r' | b'\n') => {}
                    Some(_) => malformed = true,
                }
                inside = false;
            }
        } else {
            if c == b'"' && field_start {
                inside = true;
            }
            field_start = c == b',';
        }
        i += 1;
    }
    match (inside, malformed) {
        (true, _) => Quoting::Open,
        (false, true) => Quoting::Malformed,
        (false, false) => Quoting::Closed,
    }
}

/// One record's fields, checked for UTF-8 first.
fn parse(raw: &[u8]) -> Result<csv::StringRecord, String> {
    if let Err(e) = std::str::from_utf8(raw) {
        return Err(format!("not valid UTF-8 (byte {} of the line)", e.valid_up_to() + 1));
    }
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(raw);
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(true) => Ok(record),
        Ok(false) => Err("an empty record".to_string()),
        Err(e) => Err(format!("unreadable CSV: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> Vec<(u64, Result<Vec<String>, String>)> {
        let mut r = Records::new(input);
        let mut out = Vec::new();
        while let Some((line, rec)) = r.next_record().unwrap() {
            out.push((line, rec.map(|r| r.iter().map(str::to_string).collect())));
        }
        out
    }

    #[test]
    fn good_records_around_bad_ones_are_kept() {
        let input = b"a,b\n\"stray,x\nc,d\nbad\xff,y\n\"multi\nline\",z\n\ne,\"f\"\"g\"\r\n";
        let got = all(input);
        assert_eq!(got[0], (1, Ok(vec!["a".into(), "b".into()])));
        assert_eq!(got[1].0, 2);
        assert!(got[1].1.as_ref().unwrap_err().contains("never closed"), "{got:?}");
        assert_eq!(got[2], (3, Ok(vec!["c".into(), "d".into()])));
        assert_eq!(got[3].0, 4);
        assert!(got[3].1.as_ref().unwrap_err().contains("UTF-8"), "{got:?}");
        assert_eq!(got[4], (5, Ok(vec!["multi\nline".into(), "z".into()])));
        assert_eq!(got[5], (8, Ok(vec!["e".into(), "f\"g".into()])));
        assert_eq!(got.len(), 6);
    }

    #[test]
    fn a_quote_inside_a_field_is_just_a_character() {
        assert_eq!(all(b"5\" screen,x\n"), vec![(1, Ok(vec!["5\" screen".into(), "x".into()]))]);
    }
}

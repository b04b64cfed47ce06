//! CSV records that survive bad ones.
//!
//! The csv crate stops at the first invalid UTF-8 byte, and a stray `"` at
//! the start of a field opens a quoted field that swallows every line up to
//! the next quote: one bad record cost a whole file. Here a record is one
//! line (directory fields hold no line breaks), checked and parsed on its
//! own by the csv crate; a bad one is reported with its line and reading goes
//! on at the next. A quote still open at the end of its line makes that line
//! bad: following it into the next lines cannot tell a stray quote from a
//! quoted field (proptest found the case where it guessed wrong). Only a
//! failure to read the file itself (an I/O error) ends the reading.

use std::io::BufRead;

/// One record: its first line, and its fields or why it could not be read.
pub type Record = (u64, Result<csv::StringRecord, String>);

pub struct Records<R> {
    input: R,
    /// The line being read.
    line_buf: Vec<u8>,
    /// One csv reader for every line, sought back to the start each time
    /// (a new reader per line cost a fifth of the import's speed).
    csv: csv::Reader<std::io::Cursor<Vec<u8>>>,
    /// The number of the next line.
    line: u64,
    /// Bytes of the input consumed so far (for progress).
    pub bytes: u64,
}

impl<R: BufRead> Records<R> {
    pub fn new(input: R) -> Records<R> {
        let csv =
            csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(std::io::Cursor::new(Vec::new()));
        Records { input, line_buf: Vec::new(), csv, line: 1, bytes: 0 }
    }

    /// The next record, `None` at the end, or the error that stopped reading.
    pub fn next_record(&mut self) -> std::io::Result<Option<Record>> {
        loop {
            self.line_buf.clear();
            let n = self.input.read_until(b'\n', &mut self.line_buf)?;
            if n == 0 {
                return Ok(None);
            }
            self.bytes += n as u64;
            let start = self.line;
            self.line += 1;
            if is_blank(&self.line_buf) {
                continue;
            }
            // Within the line the csv crate's leniency decides ("a"b is ab).
            if ends_in_quotes(&self.line_buf) {
                return Ok(Some((start, Err("a quoted field is not closed on its line (a stray \")".to_string()))));
            }
            return Ok(Some((start, self.parse())));
        }
    }

    /// The current line's fields, checked for UTF-8 first.
    fn parse(&mut self) -> Result<csv::StringRecord, String> {
        if let Err(e) = std::str::from_utf8(&self.line_buf) {
            return Err(format!("not valid UTF-8 (byte {} of the line)", e.valid_up_to() + 1));
        }
        let cursor = self.csv.get_mut().get_mut();
        cursor.clear();
        cursor.extend_from_slice(&self.line_buf);
        self.csv.seek(csv::Position::new()).map_err(|e| format!("unreadable CSV: {e}"))?;
        let mut record = csv::StringRecord::new();
        match self.csv.read_record(&mut record) {
            Ok(true) => Ok(record),
            Ok(false) => Err("an empty record".to_string()),
            Err(e) => Err(format!("unreadable CSV: {e}")),
        }
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|b| b.is_ascii_whitespace())
}

/// Whether `line` ends inside a quoted field. A quote opens a field only
/// at its start (as the csv crate reads it); inside, `""` is a quote and `"`
/// closes.
fn ends_in_quotes(line: &[u8]) -> bool {
    let mut inside = false;
    let mut field_start = true;
    let mut i = 0;
    while i < line.len() {
        let c = line[i];
        if inside {
            if c == b'"' {
                if line.get(i + 1) == Some(&b'"') {
                    i += 2;
                    continue;
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
    inside
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
        let input = b"a,b\n\"stray,x\nc,d\nbad\xff,y\n\",with comma\",z\n\ne,\"f\"\"g\"\r\n";
        let got = all(input);
        assert_eq!(got[0], (1, Ok(vec!["a".into(), "b".into()])));
        assert_eq!(got[1].0, 2);
        assert!(got[1].1.as_ref().unwrap_err().contains("not closed on its line"), "{got:?}");
        assert_eq!(got[2], (3, Ok(vec!["c".into(), "d".into()])));
        assert_eq!(got[3].0, 4);
        assert!(got[3].1.as_ref().unwrap_err().contains("UTF-8"), "{got:?}");
        // The case that defeats following a quote across lines: a quoted
        // field that starts with a comma, after the stray quote above.
        assert_eq!(got[4], (5, Ok(vec![",with comma".into(), "z".into()])));
        assert_eq!(got[5], (7, Ok(vec!["e".into(), "f\"g".into()])));
        assert_eq!(got.len(), 6);
    }

    #[test]
    fn a_quote_inside_a_field_is_just_a_character() {
        assert_eq!(all(b"5\" screen,x\n"), vec![(1, Ok(vec!["5\" screen".into(), "x".into()]))]);
    }
}

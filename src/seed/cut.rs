//! Records cut out of a seed file's stream, so that serde_json reads each one
//! from a slice (fast) instead of byte by byte off the stream (slow), while
//! the file's frame (the object around the two arrays) is still read by
//! serde_json off the stream, with its own words for every fault.
//!
//! The `Cutter` reads the file in large chunks. What serde_json reads through
//! it is the file as it is, except that each record (an object directly inside
//! an array that is a value of the top-level object) is cut out and stands as
//! `{}`; the record itself waits, as a slice of the chunk, for the parser to
//! take it. Positions stay true: a fault in a record is placed from where the
//! record began, a fault in the frame is moved back by what the cut records
//! took away. A record the cutter cannot hold whole (it ends the file, nests
//! too deep for serde_json's limit to read alike, or outgrows `MAX_RECORD`) is
//! not cut: serde_json reads it off the stream, as before.

use std::cell::RefCell;
use std::io::{self, Read};
use std::ops::Range;
use std::rc::Rc;

/// How much of the file is read at a time.
const CHUNK: usize = 1 << 20;

/// The largest record cut out; a larger one is read off the stream.
const MAX_RECORD: usize = 16 << 20;

/// How deep a cut record may nest. serde_json refuses values nested more than
/// 128 deep, counted from where it starts: a record read off the stream starts
/// two levels down, one cut out at the top, so only records well within the
/// limit are cut, and the rest are refused exactly as before.
const MAX_DEPTH: usize = 100;

/// What stands for a cut record in the stream serde_json reads.
const STAND_IN: &[u8] = b"{}";

/// The cutter, shared by the stream serde_json reads (`Frame`) and the parser
/// that takes the records.
pub(super) type Shared = Rc<RefCell<Cutter>>;

/// A cut record: where it lies in the chunk and where it began in the file.
pub(super) struct Cut {
    range: Range<usize>,
    line: usize,
    column: usize,
}

/// Reads the file in chunks, hands its frame on and holds the record cut last.
pub(super) struct Cutter {
    source: Box<dyn Read>,
    /// Whether records are cut at all (off: the file is read as it is).
    cutting: bool,
    chunk: Vec<u8>,
    /// The unread part of the chunk.
    at: usize,
    end: usize,
    /// The source has ended.
    ended: bool,
    /// A read error met while looking ahead, for the frame to report in its place.
    failed: Option<io::Error>,
    /// The frame's structure, as far as it has been handed on.
    frame: Structure,
    /// Where `chunk[at]` lies in the file: line from 1, column as bytes before it on its line.
    line: usize,
    column: usize,
    /// The same, in the stream handed on.
    out_line: usize,
    out_column: usize,
    /// How many lines the cut records took away so far (those of the record
    /// whose stand-in is being handed on not yet); and on the handed-on line
    /// `shift_line`, how many columns further on the file is.
    lines_cut: usize,
    lines_cutting: usize,
    shift_line: usize,
    shift: isize,
    /// What remains to hand on of a stand-in.
    stand_in: &'static [u8],
    /// The record cut last, until the parser takes it.
    cut: Option<Cut>,
}

/// The frame's nesting: how deep, what the two outer levels are, and whether in a string.
#[derive(Default)]
struct Structure {
    depth: usize,
    outer: [u8; 2],
    in_string: bool,
    escaped: bool,
}

impl Structure {
    /// Whether a `{` met now opens a record.
    fn at_record(&self) -> bool {
        !self.in_string && self.depth == 2 && self.outer == *b"{["
    }

    fn step(&mut self, byte: u8) {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if byte == b'\\' {
                self.escaped = true;
            } else if byte == b'"' {
                self.in_string = false;
            }
            return;
        }
        match byte {
            b'"' => self.in_string = true,
            b'{' | b'[' => {
                if let Some(level) = self.outer.get_mut(self.depth) {
                    *level = byte;
                }
                self.depth += 1;
            }
            b'}' | b']' => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
    }
}

impl Cutter {
    pub(super) fn new(source: Box<dyn Read>, cutting: bool) -> Shared {
        Rc::new(RefCell::new(Cutter {
            source,
            cutting,
            chunk: vec![0; CHUNK],
            at: 0,
            end: 0,
            ended: false,
            failed: None,
            frame: Structure::default(),
            line: 1,
            column: 0,
            out_line: 1,
            out_column: 0,
            lines_cut: 0,
            lines_cutting: 0,
            shift_line: 0,
            shift: 0,
            stand_in: &[],
            cut: None,
        }))
    }

    /// The record cut last, if the element serde_json stands at is one.
    pub(super) fn take(&mut self) -> Option<Cut> {
        self.cut.take()
    }

    /// The bytes of a cut record.
    pub(super) fn bytes(&self, cut: &Cut) -> &[u8] {
        &self.chunk[cut.range.clone()]
    }

    /// serde_json's error in a cut record, placed in the file.
    pub(super) fn in_record(cut: &Cut, error: &serde_json::Error) -> String {
        placed(
            error,
            |line, column| {
                if line == 1 { (cut.line, cut.column + column) } else { (cut.line + line - 1, column) }
            },
        )
    }

    /// serde_json's error in the frame, placed in the file.
    pub(super) fn in_frame(&self, error: &serde_json::Error) -> String {
        placed(error, |line, column| {
            let shift = if line == self.shift_line { self.shift } else { 0 };
            (line + self.lines_cut, column.saturating_add_signed(shift))
        })
    }

    /// Reads more of the source after `end`, growing the chunk if `grow`; false at its end.
    fn fill(&mut self, grow: bool) -> bool {
        if self.ended || self.failed.is_some() {
            return false;
        }
        if self.at > 0 {
            self.chunk.copy_within(self.at..self.end, 0);
            self.end -= self.at;
            self.at = 0;
        }
        if self.end == self.chunk.len() {
            if !grow || self.chunk.len() >= MAX_RECORD {
                return false;
            }
            self.chunk.resize(self.chunk.len() * 2, 0);
        }
        loop {
            match self.source.read(&mut self.chunk[self.end..]) {
                Ok(0) => {
                    self.ended = true;
                    return false;
                }
                Ok(n) => {
                    self.end += n;
                    return true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.failed = Some(e);
                    return false;
                }
            }
        }
    }

    /// Cuts the record opening at `chunk[at]`, if it can be held whole.
    fn cut_record(&mut self) -> bool {
        let mut scan = RecordEnd::default();
        let mut from = self.at;
        let close = loop {
            if let Some(close) = scan.find(&self.chunk[from..self.end]) {
                break from + close;
            }
            if scan.depth > MAX_DEPTH {
                return false;
            }
            let scanned = self.end - self.at;
            if !self.fill(true) {
                return false;
            }
            from = self.at + scanned;
        };
        if scan.deepest > MAX_DEPTH {
            return false;
        }
        let range = self.at..close + 1;
        let (line, column) = (self.line, self.column);
        let record = &self.chunk[range.clone()];
        let lines = memchr::memchr_iter(b'\n', record).count();
        self.line += lines;
        self.column = match memchr::memrchr(b'\n', record) {
            Some(newline) => record.len() - newline - 1,
            None => self.column + record.len(),
        };
        self.lines_cutting = lines;
        self.at = range.end;
        self.cut = Some(Cut { range, line, column });
        self.stand_in = STAND_IN;
        true
    }

    /// The next byte of the stream handed on, if any.
    fn next(&mut self) -> io::Result<Option<u8>> {
        if let Some((&byte, rest)) = self.stand_in.split_first() {
            self.stand_in = rest;
            self.out_column += 1;
            if rest.is_empty() {
                // The stand-in is handed on: the rest of its line lies `shift` columns further on in the file.
                self.shift_line = self.out_line;
                self.shift = self.column as isize - self.out_column as isize;
                self.lines_cut += std::mem::take(&mut self.lines_cutting);
            }
            return Ok(Some(byte));
        }
        if self.at == self.end && !self.fill(false) {
            return match self.failed.take() {
                Some(e) => Err(e),
                None => Ok(None),
            };
        }
        let byte = self.chunk[self.at];
        if byte == b'{' && self.cutting && self.frame.at_record() && self.cut_record() {
            return self.next();
        }
        self.frame.step(byte);
        self.at += 1;
        if byte == b'\n' {
            (self.line, self.column, self.out_line, self.out_column) = (self.line + 1, 0, self.out_line + 1, 0);
        } else {
            self.column += 1;
            self.out_column += 1;
        }
        Ok(Some(byte))
    }
}

/// The stream serde_json reads: the file with its records cut out.
pub(super) struct Frame(pub(super) Shared);

impl Read for Frame {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut cutter = self.0.borrow_mut();
        let mut written = 0;
        while written < out.len() {
            match cutter.next() {
                Ok(Some(byte)) => {
                    out[written] = byte;
                    written += 1;
                }
                Ok(None) => break,
                Err(e) if written == 0 => return Err(e),
                Err(e) => {
                    // Handed on with the next read, after the bytes before it.
                    cutter.failed = Some(e);
                    break;
                }
            }
        }
        Ok(written)
    }
}

/// serde_json's message with its position moved by `place`.
fn placed(error: &serde_json::Error, place: impl FnOnce(usize, usize) -> (usize, usize)) -> String {
    let text = error.to_string();
    if error.line() == 0 {
        return text;
    }
    let said = format!(" at line {} column {}", error.line(), error.column());
    let message = text.strip_suffix(&said).unwrap_or(&text);
    let (line, column) = place(error.line(), error.column());
    format!("{message} at line {line} column {column}")
}

/// Finds where a record ends, in bytes that may come in several pieces: the
/// first piece starts with the record's `{`, each next one where the last ended.
#[derive(Default)]
struct RecordEnd {
    depth: usize,
    deepest: usize,
    in_string: bool,
    escaped: bool,
}

impl RecordEnd {
    /// The index in `bytes` of the record's closing bracket, if it is there.
    fn find(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < bytes.len() {
            if self.escaped {
                self.escaped = false;
                i += 1;
                continue;
            }
            if self.in_string {
                // Only a quote or a backslash matters inside a string.
                let at = i + memchr::memchr2(b'"', b'\\', &bytes[i..])?;
                if bytes[at] == b'"' {
                    self.in_string = false;
                } else {
                    self.escaped = true;
                }
                i = at + 1;
                continue;
            }
            match bytes[i] {
                b'"' => self.in_string = true,
                b'{' | b'[' => {
                    self.depth += 1;
                    self.deepest = self.deepest.max(self.depth);
                }
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        return Some(i);
                    }
                }
                _ => {}
            }
            i += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    /// Where the record ends when its bytes come in pieces cut at each of `cuts`.
    fn end_in_pieces(record: &[u8], cuts: &[usize]) -> Option<usize> {
        let mut scan = RecordEnd::default();
        let mut from = 0;
        for &to in cuts.iter().chain([&record.len()]) {
            if let Some(at) = scan.find(&record[from..to]) {
                return Some(from + at);
            }
            from = to;
        }
        None
    }

    #[test]
    fn a_record_ends_at_its_own_closing_brace_whatever_its_strings_hold() {
        let records: &[&str] = &[
            r#"{"id":"a:value:v","title":"V"}"#,
            r#"{"title":"braces } ] { [ in a string","id":"a:value:v"}"#,
            r#"{"title":"an escaped quote \" } and a backslash \\","id":"x"}"#,
            r#"{"title":"\\\\\"}\\","nested":{"list":[1,{"a":"}"}],"more":[]}}"#,
            "{\n  \"title\": \"on\",\n  \"lines\": [\n 1\n ]\n}",
        ];
        for record in records {
            let text = format!("{record}, {{\"next\": 1}}]");
            let bytes = text.as_bytes();
            let whole = end_in_pieces(bytes, &[]);
            assert_eq!(whole, Some(record.len() - 1), "{record}");
            // Cut into two and three pieces at every place, the end is the same.
            for a in 0..bytes.len() {
                assert_eq!(end_in_pieces(bytes, &[a]), whole, "{record} cut at {a}");
                for b in a..bytes.len() {
                    assert_eq!(end_in_pieces(bytes, &[a, b]), whole, "{record} cut at {a} and {b}");
                }
            }
        }
    }

    #[test]
    fn an_unfinished_record_has_no_end() {
        for text in [r#"{"title":"V""#, r#"{"title":"}"#, r#"{"a":{"b":1}"#, r#"{"title":"\"}"#] {
            assert_eq!(end_in_pieces(text.as_bytes(), &[]), None, "{text}");
        }
    }

    #[test]
    fn nesting_is_measured() {
        let mut scan = RecordEnd::default();
        assert_eq!(scan.find(br#"{"a":[[{"b":[]}]]}"#), Some(17));
        assert_eq!(scan.deepest, 5);
    }

    /// What serde_json reads through the cutter, and the records cut out.
    fn cut_all(text: &str, chunk: usize) -> (String, Vec<(String, usize, usize)>) {
        let cutter = Cutter::new(Box::new(io::Cursor::new(text.as_bytes().to_vec())), true);
        cutter.borrow_mut().chunk.truncate(chunk);
        let mut frame = Frame(cutter.clone());
        let mut seen = Vec::new();
        let mut records = Vec::new();
        let mut byte = [0];
        while frame.read(&mut byte).unwrap() == 1 {
            seen.push(byte[0]);
            let mut cutter = cutter.borrow_mut();
            if let Some(cut) = cutter.take() {
                let bytes = String::from_utf8(cutter.bytes(&cut).to_vec()).unwrap();
                records.push((bytes, cut.line, cut.column));
            }
        }
        (String::from_utf8(seen).unwrap(), records)
    }

    #[test]
    fn records_are_cut_out_of_the_frame_whatever_the_chunk_size() {
        let text = "{\"format\": \"pvgraph/1\", \"nodes\": [\n  {\"id\": \"a}\", \"t\": [1, {}]},\n  {\"id\": \"b\\\"{\"}, 7, [{}]\n],\n\"relationships\": [{\"from\":\n\"a\"}], \"x\": {\"y\": [{}]}}";
        let frame = "{\"format\": \"pvgraph/1\", \"nodes\": [\n  {},\n  {}, 7, [{}]\n],\n\"relationships\": [{}], \"x\": {\"y\": [{}]}}";
        let records = vec![
            ("{\"id\": \"a}\", \"t\": [1, {}]}".to_owned(), 2, 2),
            ("{\"id\": \"b\\\"{\"}".to_owned(), 3, 2),
            ("{\"from\":\n\"a\"}".to_owned(), 5, 18),
        ];
        // Chunks smaller than a record grow until it fits.
        for chunk in [1, 2, 3, 7, 16, 64, CHUNK] {
            assert_eq!(cut_all(text, chunk), (frame.to_owned(), records.clone()), "chunks of {chunk}");
        }
    }

    #[test]
    fn an_unfinished_record_is_not_cut() {
        let text = "{\"nodes\": [{\"id\": \"a\"}, {\"id\": \"b\"";
        assert_eq!(
            cut_all(text, 8),
            ("{\"nodes\": [{}, {\"id\": \"b\"".to_owned(), vec![("{\"id\": \"a\"}".to_owned(), 1, 11)])
        );
    }

    #[test]
    fn faults_are_placed_where_they_are_in_the_file() {
        let text = "{\"nodes\": [{\"id\":\n \"a\"}, {\"id\": \"b\"}   x\n]}";
        let cutter = Cutter::new(Box::new(io::Cursor::new(text.as_bytes().to_vec())), true);
        let mut json = serde_json::Deserializer::from_reader(Frame(cutter.clone()));
        let error = serde::de::IgnoredAny::deserialize(&mut json).unwrap_err();
        // serde_json met the `x` in `{"nodes": [{}, {}   x` on its first line; in the file it is on the second.
        assert_eq!(error.to_string(), "expected `,` or `]` at line 1 column 21");
        assert_eq!(cutter.borrow().in_frame(&error), "expected `,` or `]` at line 2 column 22");
        let direct = serde_json::from_str::<serde::de::IgnoredAny>(text).unwrap_err();
        assert_eq!(cutter.borrow().in_frame(&error), direct.to_string());

        // A fault inside a record, read from its slice, is placed from where the record began.
        let cut = Cut { range: 0..0, line: 4, column: 10 };
        for record in ["{\"a\" 1}", "{\"a\":\n  1 2}", "{\"a\": [1,\n2,\n\n3}"] {
            let alone = serde_json::from_str::<serde_json::Value>(record).unwrap_err();
            let in_file = serde_json::from_str::<serde_json::Value>(&format!("\n\n\n{:10}{record}", "")).unwrap_err();
            assert_eq!(Cutter::in_record(&cut, &alone), in_file.to_string(), "{record}");
        }
    }
}

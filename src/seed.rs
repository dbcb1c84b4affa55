//! Loading seed files: read as a stream, checked record by record and handed
//! to the store in batches, all in one transaction, all of it or nothing,
//! with errors that name the record at fault. Only a few batches of records
//! are in memory at a time, never the whole file: a parser thread reads and
//! checks records while the store writes the ones before them. Each record is
//! cut out of the stream whole and read from its bytes (`cut`), which is much
//! cheaper than reading it off the stream a byte at a time.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

use chrono::{DateTime, Utc};
use foldhash::HashMap;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use tokio::sync::mpsc;

use crate::domain::record::{EdgeRecordReader, FORMAT};
use crate::domain::{Change, EdgeRecord, Error, Node, NodeId, NodeRecord, Result, now};
use crate::store::Store;

mod cut;

/// King County's *Reimagining public value* programme, built into the binary.
pub const KING_COUNTY: &str = include_str!("../seed/king-county.json");

/// How many records travel to the store together.
pub const BATCH: usize = 4_096;

/// How many batches the parser may run ahead of the store.
const AHEAD: usize = 4;

/// What a load wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub nodes: usize,
    pub relationships: usize,
    /// The organisations whose nodes this store does not hold but which relationships reach
    /// (foreign ends, a partner's nodes), each with how many relationships reach it, by name.
    pub foreign: Vec<(String, usize)>,
}

/// "74 nodes and 232 relationships", and the foreign organisations reached, if any.
impl fmt::Display for Loaded {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} nodes and {} relationships", self.nodes, self.relationships)?;
        for (organisation, count) in &self.foreign {
            let noun = if *count == 1 { "relationship" } else { "relationships" };
            write!(f, "; {count} {noun} to nodes of {organisation}, which this instance does not hold")?;
        }
        Ok(())
    }
}

/// Loads a seed file's text into the store.
pub async fn load(store: &Store, text: &str) -> Result<Loaded> {
    load_reader(store, std::io::Cursor::new(text.to_owned().into_bytes())).await
}

/// Loads a seed file from disk.
pub async fn load_file(store: &Store, path: &std::path::Path) -> Result<Loaded> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::invalid("file", format!("{} cannot be read: {e}", path.display())))?;
    load_reader(store, file).await
}

/// Loads a seed file from any reader (a file, standard input, a progress-counting wrapper).
pub async fn load_reader(store: &Store, reader: impl Read + Send + 'static) -> Result<Loaded> {
    let (batches, received) = mpsc::channel(AHEAD);
    let now = now();
    let parser = tokio::task::spawn_blocking(move || Parser::new(batches, now, reader, true).run());
    let written = store.import(received).await;
    let parsed = parser.await.map_err(Error::internal)?;
    match written {
        Ok(_) => Ok(Loaded {
            nodes: parsed.count("nodes"),
            relationships: parsed.count("relationships"),
            foreign: foreign(store, &parsed.reached).await?,
        }),
        // The parser's own error, already naming its record, ended the stream there.
        Err(failed) if Some(failed.index) == parsed.refused_at => Err(failed.error),
        Err(failed) => Err(match parsed.place(failed.index) {
            Some(place) => failed.error.within(&place),
            None => failed.error,
        }),
    }
}

/// Of the organisations relationships reached, those without a node in the store, with their counts.
async fn foreign(store: &Store, reached: &BTreeMap<String, usize>) -> Result<Vec<(String, usize)>> {
    let owners = reached.keys().map(|o| NodeId::organisation_node(o)).collect::<Result<Vec<_>>>()?;
    let held: Vec<String> = store.nodes(&owners).await?.into_iter().map(|n| n.organisation().to_owned()).collect();
    Ok(reached.iter().filter(|(o, _)| !held.contains(o)).map(|(o, n)| (o.clone(), *n)).collect())
}

/// Reads records off the file and sends them on in batches.
struct Parser {
    /// The file, its records cut out to be read from slices.
    cutter: cut::Shared,
    batches: mpsc::Sender<Result<Vec<Change>>>,
    now: DateTime<Utc>,
    batch: Vec<Change>,
    /// How many records were read so far: the index of the next change.
    count: usize,
    /// Each array of the file in the order met, with the index of its first change.
    sections: Vec<(&'static str, usize)>,
    format: bool,
    /// The index of the record the parser refused, if it did.
    refused_at: Option<usize>,
    /// How many relationships reach each organisation (at either end); hashed,
    /// since it is counted twice for every relationship.
    reached: HashMap<String, usize>,
}

/// What the parser saw, for naming the record behind a change.
struct Parsed {
    sections: Vec<(&'static str, usize)>,
    count: usize,
    refused_at: Option<usize>,
    reached: BTreeMap<String, usize>,
}

impl Parsed {
    /// How many records the file's array of that name held.
    fn count(&self, name: &str) -> usize {
        let mut total = 0;
        for (i, (section, start)) in self.sections.iter().enumerate() {
            let end = self.sections.get(i + 1).map_or(self.count, |(_, next)| *next);
            if *section == name {
                total += end - start;
            }
        }
        total
    }

    /// The place of the record behind the change at `index`, e.g. `relationships[40]`.
    fn place(&self, index: usize) -> Option<String> {
        let (section, start) = self.sections.iter().rev().find(|(_, start)| *start <= index)?;
        Some(format!("{section}[{}]", index - start))
    }
}

/// Why the parser stopped early; the text is for serde only, never shown.
const STOPPED: &str = "the import stopped";

impl Parser {
    /// A parser of the file `reader` reads; `cutting` off reads every record off the stream.
    fn new(
        batches: mpsc::Sender<Result<Vec<Change>>>,
        now: DateTime<Utc>,
        reader: impl Read + 'static,
        cutting: bool,
    ) -> Parser {
        Parser {
            cutter: cut::Cutter::new(Box::new(reader), cutting),
            batches,
            now,
            batch: Vec::with_capacity(BATCH),
            count: 0,
            sections: Vec::new(),
            format: false,
            refused_at: None,
            reached: HashMap::default(),
        }
    }

    fn run(mut self) -> Parsed {
        let mut json = serde_json::Deserializer::from_reader(cut::Frame(self.cutter.clone()));
        let outcome = (&mut self).deserialize(&mut json).and_then(|()| json.end());
        match outcome {
            Ok(()) => {
                let batch = std::mem::take(&mut self.batch);
                self.send(batch);
            }
            // The store stopped taking batches (it refused one), or the parser refused a record.
            Err(_) if self.refused_at.is_some() || self.batches.is_closed() => {}
            Err(e) => {
                let message = self.cutter.borrow().in_frame(&e);
                self.refuse(Error::invalid("file", message));
            }
        }
        let reached = self.reached.into_iter().collect();
        Parsed { sections: self.sections, count: self.count, refused_at: self.refused_at, reached }
    }

    /// Sends a batch; false when the store no longer listens.
    fn send(&mut self, batch: Vec<Change>) -> bool {
        !batch.is_empty() && self.batches.blocking_send(Ok(batch)).is_ok()
    }

    /// Ends the stream with the error of the record at `self.count`, after the records before it.
    fn refuse(&mut self, error: Error) {
        let batch = std::mem::take(&mut self.batch);
        if batch.is_empty() || self.send(batch) {
            self.refused_at = Some(self.count);
            let _ = self.batches.blocking_send(Err(error));
        }
    }

    /// Counts the organisations a relationship reaches, each once.
    fn reach(&mut self, change: &Change) {
        let Change::Link(edge) = change else { return };
        let ends = [edge.from.organisation(), edge.to.organisation()];
        let distinct = if ends[0] == ends[1] { &ends[..1] } else { &ends[..] };
        for organisation in distinct {
            match self.reached.get_mut(*organisation) {
                Some(count) => *count += 1,
                None => {
                    self.reached.insert((*organisation).to_owned(), 1);
                }
            }
        }
    }

    /// Takes the next record's change, or its error naming `place`.
    fn push<E: de::Error>(&mut self, change: Result<Change>, place: impl FnOnce() -> String) -> Result<(), E> {
        match change {
            Ok(change) => {
                self.reach(&change);
                self.batch.push(change);
                self.count += 1;
                if self.batch.len() >= BATCH {
                    let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
                    if !self.send(batch) {
                        return Err(E::custom(STOPPED));
                    }
                }
                Ok(())
            }
            Err(error) => {
                self.refuse(error.within(&place()));
                Err(E::custom(STOPPED))
            }
        }
    }
}

const FIELDS: &[&str] = &["format", "nodes", "relationships"];

impl<'de> DeserializeSeed<'de> for &mut Parser {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for &mut Parser {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a seed file: an object with format, nodes and relationships")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen: Vec<String> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if seen.contains(&key) {
                return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
            }
            match key.as_str() {
                "format" => {
                    let format: String = map.next_value()?;
                    if format != FORMAT {
                        let error = Error::invalid("format", format!("is `{format}`; this version reads `{FORMAT}`"));
                        self.refuse(error);
                        return Err(de::Error::custom(STOPPED));
                    }
                    self.format = true;
                }
                "nodes" => map.next_value_seed(Records { parser: self, name: "nodes" })?,
                "relationships" => map.next_value_seed(Records { parser: self, name: "relationships" })?,
                other => return Err(de::Error::unknown_field(other, FIELDS)),
            }
            seen.push(key);
        }
        if !self.format {
            return Err(de::Error::missing_field("format"));
        }
        Ok(())
    }
}

/// One array of records: `nodes` or `relationships`.
struct Records<'p> {
    parser: &'p mut Parser,
    name: &'static str,
}

impl<'de> DeserializeSeed<'de> for Records<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Records<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a list of {}", self.name)
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<(), S::Error> {
        let Records { parser, name } = self;
        parser.sections.push((name, parser.count));
        let element = Element { cutter: parser.cutter.clone(), nodes: name == "nodes", now: parser.now };
        for i in 0.. {
            match seq.next_element_seed(&element)? {
                None => break,
                Some(Ok(change)) => parser.push(change, || format!("{name}[{i}]"))?,
                Some(Err(Broken(message))) => {
                    parser.refuse(Error::invalid("file", message));
                    return Err(de::Error::custom(STOPPED));
                }
            }
        }
        Ok(())
    }
}

/// One element of `nodes` or `relationships`: a record cut out of the stream,
/// read from its slice, or any other value, read off the stream.
struct Element {
    cutter: cut::Shared,
    nodes: bool,
    now: DateTime<Utc>,
}

/// Broken JSON inside a cut record: serde_json's words, placed in the file.
struct Broken(String);

impl Element {
    /// The change of a record read by `deserializer`; the outer error is broken JSON.
    fn change<'de, D: de::Deserializer<'de>>(&self, deserializer: D) -> Result<Result<Change>, D::Error> {
        Ok(if self.nodes {
            Node::from_record(NodeRecord::deserialize(deserializer)?, self.now).map(Change::Create)
        } else {
            EdgeRecordReader.deserialize(deserializer)?.and_then(EdgeRecord::into_edge).map(Change::Link)
        })
    }

    /// The change of the one record `json` holds.
    fn change_of<'de, R: serde_json::de::Read<'de>>(
        &self,
        mut json: serde_json::Deserializer<R>,
    ) -> Result<Result<Change>, serde_json::Error> {
        self.change(&mut json).and_then(|change| json.end().map(|()| change))
    }
}

impl<'de> DeserializeSeed<'de> for &Element {
    /// The record's change or its fault, unless its JSON is broken.
    type Value = std::result::Result<Result<Change>, Broken>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        let cut = self.cutter.borrow_mut().take();
        let Some(cut) = cut else { return self.change(deserializer).map(Ok) };
        let read = {
            let cutter = self.cutter.borrow();
            let bytes = cutter.bytes(&cut);
            // Text checked once as a whole spares serde_json checking each string; a record that is
            // not UTF-8 is read as bytes, for serde_json to name the fault where it lies.
            match std::str::from_utf8(bytes) {
                Ok(text) => self.change_of(serde_json::Deserializer::from_str(text)),
                Err(_) => self.change_of(serde_json::Deserializer::from_slice(bytes)),
            }
        };
        // What stands in the stream for the record.
        IgnoredAny::deserialize(deserializer)?;
        Ok(read.map_err(|broken| Broken(cut::Cutter::in_record(&cut, &broken))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that hands on at most a few bytes a read, so records cross every chunk border.
    struct Trickle(std::io::Cursor<Vec<u8>>, usize);

    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = out.len().min(self.1);
            self.0.read(&mut out[..n])
        }
    }

    /// Everything the parser sends and what it saw, in words, for comparing two ways of reading.
    fn parse(text: &[u8], cutting: bool, trickle: usize) -> Vec<String> {
        let (batches, mut received) = mpsc::channel(64);
        let now = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z").unwrap().to_utc();
        let parsed = Parser::new(batches, now, Trickle(std::io::Cursor::new(text.to_vec()), trickle), cutting).run();
        let mut sent = Vec::new();
        while let Ok(batch) = received.try_recv() {
            sent.push(match batch {
                Ok(changes) => format!("{changes:?}"),
                Err(error) => format!("refused: {error}"),
            });
        }
        sent.push(format!("{:?} {} {:?} {:?}", parsed.sections, parsed.count, parsed.refused_at, parsed.reached));
        sent
    }

    /// A small file with records over one line and several, strings holding
    /// brackets, quotes and escapes, and relationships to a foreign organisation.
    const FILE: &str = r#"{
  "format": "pvgraph/1",
  "nodes": [
    {"id": "zz:organisation:zz", "title": "Zed {of} [the] \"quoted\" \\ place"},
    {
      "id": "zz:value:v",
      "title": "V",
      "definition": "a } b ] c \\\" d",
      "tags": ["x{", "]y"]
    },
    {"id": "zz:principle:p", "title": "P", "statement": "Keep } it"}
  ],
  "relationships": [
    {"kind": "UPHOLDS", "from": "zz:principle:p", "to": "zz:value:v"},
    {"kind": "UPHOLDS",
     "from": "zz:principle:p", "to": "yy:value:w"}
  ]
}
"#;

    #[test]
    fn records_cut_out_read_as_they_did_off_the_stream() {
        let stream = parse(FILE.as_bytes(), false, usize::MAX);
        assert!(stream[0].contains("zz:organisation:zz") && !stream[0].starts_with("refused"), "{stream:?}");
        for trickle in [1, 2, 5, 64, usize::MAX] {
            assert_eq!(parse(FILE.as_bytes(), true, trickle), stream, "reads of {trickle} bytes");
        }
    }

    /// Every file one byte away from `FILE` (one byte taken out, or one put in)
    /// is read alike, cut or not: the same records, or the same refusal with the
    /// same line and column (a byte that is not UTF-8 among them).
    #[test]
    fn a_broken_file_is_refused_in_the_same_words_with_records_cut_out() {
        let bytes = FILE.as_bytes();
        let mut variants = Vec::new();
        for at in 0..bytes.len() {
            let mut without = bytes.to_vec();
            without.remove(at);
            variants.push(without);
            for byte in *b"{}[]\",:\\\nx1 \xff\xc3" {
                let mut with = bytes.to_vec();
                with.insert(at, byte);
                variants.push(with);
            }
        }
        let mut refused = 0;
        for (i, variant) in variants.iter().enumerate() {
            let stream = parse(variant, false, usize::MAX);
            refused += stream.iter().any(|s| s.starts_with("refused")) as usize;
            let trickle = [1, 3, usize::MAX][i % 3];
            assert_eq!(parse(variant, true, trickle), stream, "{}", String::from_utf8_lossy(variant));
        }
        // Most of them are refused (a space or a line more is not), so the refusals were compared.
        assert!(refused > variants.len() / 2, "{refused} of {}", variants.len());
    }

    /// serde_json refuses values nested too deep, counted from where it starts
    /// reading: records nested near the limit are read off the stream, as before.
    #[test]
    fn records_nested_deep_are_refused_alike() {
        for depth in [90, 99, 100, 101, 120, 125, 126, 127, 128, 130] {
            let nested = format!("{}{}", "[".repeat(depth - 1), "]".repeat(depth - 1));
            let file = format!(
                r#"{{"format": "pvgraph/1", "nodes": [{{"id": "zz:value:v", "title": "V", "x": {nested}}}, {{"id": "zz:value:w"}}]}}"#
            );
            let stream = parse(file.as_bytes(), false, usize::MAX);
            assert!(stream.iter().any(|s| s.starts_with("refused")), "{stream:?}");
            assert_eq!(parse(file.as_bytes(), true, usize::MAX), stream, "nested {depth} deep");
            // The record (one level) holds `x` (depth - 1 levels), two levels down the file.
            let too_deep = stream.iter().any(|s| s.contains("recursion limit exceeded"));
            assert_eq!(too_deep, 2 + depth > 127, "nested {depth} deep: {stream:?}");
        }
    }

    #[test]
    fn a_syntax_error_after_records_over_several_lines_names_its_place_in_the_file() {
        let broken = FILE.replace("\"to\": \"yy:value:w\"}", "\"to\": \"yy:value:w\"} x");
        let stream = parse(broken.as_bytes(), true, usize::MAX);
        let refusal = stream.iter().find(|s| s.starts_with("refused")).expect("refused");
        assert_eq!(refusal, "refused: file: expected `,` or `]` at line 16 column 52");
        assert_eq!(stream, parse(broken.as_bytes(), false, usize::MAX));
    }
}

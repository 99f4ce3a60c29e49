//! `probe -o FILE.json`: the whole session in one JSON document, as seed 003 writes it —
//! configuration, per-target, per-host and per-port statistics, and every probe's result.
//! Results are streamed to a scratch file beside FILE while the run goes on (memory stays
//! bounded however long it runs); at the end the document is written to a second scratch file
//! and renamed over FILE, so FILE is never half-written.

use anyhow::Context;
use serde_json::Value;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The session file being written.
pub struct SessionFile {
    path: PathBuf,
    results_path: PathBuf,
    results: BufWriter<File>,
    count: u64,
}

fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

impl SessionFile {
    /// Opens the scratch file beside `path` now, so a folder that cannot be written fails the
    /// start, not the end of a long run.
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let results_path = beside(path, ".results.part");
        let file = File::create(&results_path)
            .with_context(|| format!("cannot write {} (-o)", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            results_path,
            results: BufWriter::new(file),
            count: 0,
        })
    }

    /// Appends one probe's result.
    pub fn result(&mut self, v: &Value) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.results, v)
            .map_err(std::io::Error::from)
            .and_then(|()| self.results.write_all(b"\n"))
            .with_context(|| format!("cannot write {}", self.results_path.display()))?;
        self.count += 1;
        Ok(())
    }

    /// Writes the document: `head`'s fields, then `"results": [every result]`; returns how many.
    pub fn finish(mut self, head: serde_json::Map<String, Value>) -> anyhow::Result<u64> {
        let scratch = beside(&self.path, ".part");
        let written = (|| -> anyhow::Result<()> {
            self.results.flush()?;
            let mut out = BufWriter::new(File::create(&scratch)?);
            // The head without its closing brace, then the results array streamed in.
            let head = serde_json::to_string_pretty(&Value::Object(head))?;
            let open = head
                .trim_end()
                .strip_suffix('}')
                .unwrap_or(&head)
                .trim_end();
            out.write_all(open.as_bytes())?;
            out.write_all(if open.ends_with('{') { b"\n" } else { b",\n" })?;
            out.write_all(b"  \"results\": [")?;
            let reader = BufReader::new(File::open(&self.results_path)?);
            for (i, line) in reader.lines().enumerate() {
                out.write_all(if i == 0 { b"\n    " } else { b",\n    " })?;
                out.write_all(line?.as_bytes())?;
            }
            out.write_all(b"\n  ]\n}\n")?;
            out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            std::fs::rename(&scratch, &self.path)?;
            Ok(())
        })();
        let _ = std::fs::remove_file(&self.results_path);
        written.with_context(|| format!("cannot write {} (-o)", self.path.display()))?;
        Ok(self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_document_holds_the_head_and_every_result_and_leaves_no_scratch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run.json");
        let mut f = SessionFile::create(&path).expect("create");
        for seq in 1..=3 {
            f.result(&json!({"seq": seq})).expect("result");
        }
        let mut head = serde_json::Map::new();
        head.insert("session".into(), json!({"targets": 1}));
        assert_eq!(f.finish(head).expect("finish"), 3);
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
        assert_eq!(v["session"]["targets"], 1);
        assert_eq!(v["results"], json!([{"seq": 1}, {"seq": 2}, {"seq": 3}]));
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
        assert_eq!(left.len(), 1, "{left:?}");
        // No results at all: still a document.
        let f = SessionFile::create(&path).expect("create");
        assert_eq!(f.finish(serde_json::Map::new()).expect("finish"), 0);
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
        assert_eq!(v, json!({"results": []}));
    }

    #[test]
    fn a_folder_that_cannot_be_written_fails_at_create_naming_the_file() {
        let e = SessionFile::create(Path::new("/nonexistent-dir/run.json"))
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(e.contains("/nonexistent-dir/run.json"), "{e}");
    }
}

//! Loading every go-ftw test file below a directory (`ftw run -d DIR`: `DIR/**/*.y*ml`).

use std::path::{Path, PathBuf};

use crate::model::{FtwFile, Stage};

/// Why test files could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A directory or file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path being read.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not a valid go-ftw test file.
    #[error("{path}: {message}")]
    Yaml {
        /// The file.
        path: PathBuf,
        /// The YAML error, with line and column.
        message: String,
    },
    /// No rule id in the file and none in its name.
    #[error("{path}: no rule_id and no number in the file name")]
    NoRuleId {
        /// The file.
        path: PathBuf,
    },
}

/// All test files found below a directory, in path order.
#[derive(Debug, Clone, Default)]
pub struct Suite {
    /// The files, sorted by path.
    pub files: Vec<TestFile>,
}

/// One test file.
#[derive(Debug, Clone)]
pub struct TestFile {
    /// Path of the file.
    pub path: PathBuf,
    /// Name of the directory holding it (the rule file stem in the CRS layout).
    pub dir: String,
    /// The rule under test.
    pub rule_id: u32,
    /// The tests in file order.
    pub tests: Vec<TestCase>,
}

/// One test: `<rule_id>-<test_id>`.
#[derive(Debug, Clone)]
pub struct TestCase {
    /// The rule under test.
    pub rule_id: u32,
    /// The test number.
    pub test_id: u32,
    /// Free-text description.
    pub desc: Option<String>,
    /// The stages, in order.
    pub stages: Vec<Stage>,
}

impl TestCase {
    /// go-ftw's name for the test, `<rule_id>-<test_id>`.
    pub fn name(&self) -> String {
        format!("{}-{}", self.rule_id, self.test_id)
    }
}

impl Suite {
    /// Loads every `*.yaml`/`*.yml` file below `dir`, recursively.
    pub fn load(dir: &Path) -> Result<Suite, LoadError> {
        let mut paths = Vec::new();
        collect_yaml(dir, &mut paths)?;
        paths.sort();
        let files = paths
            .iter()
            .map(|p| load_file(p))
            .collect::<Result<_, _>>()?;
        Ok(Suite { files })
    }

    /// Every test of every file, with its file.
    pub fn cases(&self) -> impl Iterator<Item = (&TestFile, &TestCase)> {
        self.files
            .iter()
            .flat_map(|f| f.tests.iter().map(move |t| (f, t)))
    }

    /// Number of tests.
    pub fn test_count(&self) -> usize {
        self.files.iter().map(|f| f.tests.len()).sum()
    }
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let io = |source| LoadError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir() {
            collect_yaml(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    Ok(())
}

/// Loads one test file, applying go-ftw's post-load defaults.
pub fn load_file(path: &Path) -> Result<TestFile, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let parsed = parse_file(&text).map_err(|message| LoadError::Yaml {
        path: path.to_path_buf(),
        message,
    })?;
    let rule_id = match parsed.rule_id {
        0 => rule_id_from_name(path).ok_or_else(|| LoadError::NoRuleId {
            path: path.to_path_buf(),
        })?,
        id => id,
    };
    let tests = parsed
        .tests
        .into_iter()
        .enumerate()
        .map(|(index, raw)| TestCase {
            rule_id,
            // go-ftw keeps explicit ids and numbers the rest by position, from 1.
            test_id: if raw.test_id == 0 {
                u32::try_from(index + 1).unwrap_or(u32::MAX)
            } else {
                raw.test_id
            },
            desc: raw.desc,
            stages: raw
                .stages
                .into_iter()
                .map(|s| Stage {
                    input: s.input,
                    output: s.output.normalized(),
                })
                .collect(),
        })
        .collect();
    let dir = path
        .parent()
        .and_then(Path::file_name)
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(TestFile {
        path: path.to_path_buf(),
        dir,
        rule_id,
        tests,
    })
}

/// Parses a test file's text; a document with only comments has no tests.
pub fn parse_file(text: &str) -> Result<FtwFile, String> {
    let parsed: Option<FtwFile> = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    Ok(parsed.unwrap_or_default())
}

/// go-ftw's fallback: the first run of digits in the file name.
fn rule_id_from_name(path: &Path) -> Option<u32> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    let digits: String = name
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

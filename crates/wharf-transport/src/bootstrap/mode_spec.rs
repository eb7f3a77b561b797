//! Reactor modes as text: what a command line or a configuration file
//! says, parsed into a [`ReactorMode`] with the parameters of that mode
//! only, and printed back the same way.
//!
//! Each mode names its own parameters, so a setting that does not apply
//! to a mode is an error instead of being ignored (a `--workers` flag that
//! meant handler threads for one mode and nothing for another was how a
//! newcomer ended up with the wrong wiring).

use std::fmt;
use std::str::FromStr;

use crate::bootstrap::ReactorMode;

/// Why a reactor mode could not be parsed. Its message names the mode and
/// the parameter at fault.
///
/// The accepted forms, where a bare number is the mode's first parameter
/// and a missing one defaults to the machine's CPU count
/// ([`std::thread::available_parallelism`]):
///
/// | text | mode |
/// |---|---|
/// | `single` | [`ReactorMode::Single`] |
/// | `pool`, `pool:4`, `pool:workers=4` | [`ReactorMode::WorkerPool`] (workers ≥ 1) |
/// | `multi`, `multi:2`, `multi:2,workers=4`, `multi:sub_reactors=2,workers=4` | [`ReactorMode::MultiReactor`] (sub-reactors ≥ 1, workers ≥ 0, default 0) |
/// | `reuseport`, `reuseport:2`, `reuseport:reactors=2` | [`ReactorMode::Reuseport`] (reactors ≥ 1) |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseModeError(String);

impl fmt::Display for ParseModeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseModeError {}

fn error(text: String) -> ParseModeError {
    ParseModeError(text)
}

/// The machine's CPU count: the default number of loops or workers.
fn cpus() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// The parameters a mode takes, in order; the first is the one a bare
/// number sets.
fn parameters(mode: &str) -> Option<&'static [&'static str]> {
    match mode {
        "single" => Some(&[]),
        "pool" => Some(&["workers"]),
        "multi" => Some(&["sub_reactors", "workers"]),
        "reuseport" => Some(&["reactors"]),
        _ => None,
    }
}

impl FromStr for ReactorMode {
    type Err = ParseModeError;

    fn from_str(text: &str) -> Result<ReactorMode, ParseModeError> {
        let (name, params) = match text.split_once(':') {
            Some((name, params)) => (name.trim(), Some(params)),
            None => (text.trim(), None),
        };
        let known = parameters(name).ok_or_else(|| {
            error(format!(
                "unknown reactor mode {name:?}: expected single, pool, multi or reuseport"
            ))
        })?;
        let mut values: Vec<Option<usize>> = vec![None; known.len()];
        for (i, item) in params.into_iter().flat_map(|p| p.split(',')).enumerate() {
            let item = item.trim();
            let (key, value) = match item.split_once('=') {
                Some((key, value)) => (key.trim(), value.trim()),
                None if i == 0 && !known.is_empty() => (known[0], item),
                None => {
                    return Err(error(format!(
                        "mode {name}: {item:?} should be NAME=VALUE (parameters: {})",
                        list(known)
                    )));
                }
            };
            let key = if name == "multi" && key == "reactors" {
                "sub_reactors"
            } else {
                key
            };
            let slot = known.iter().position(|k| *k == key).ok_or_else(|| {
                error(format!(
                    "mode {name} has no parameter {key:?} (parameters: {})",
                    list(known)
                ))
            })?;
            let n: usize = value.parse().map_err(|_| {
                error(format!(
                    "mode {name}: {key} must be a whole number, not {value:?}"
                ))
            })?;
            if values[slot].replace(n).is_some() {
                return Err(error(format!("mode {name}: {key} is given twice")));
            }
        }
        let at_least_one = |key: &str, n: usize| {
            if n == 0 {
                Err(error(format!("mode {name}: {key} must be at least 1")))
            } else {
                Ok(n)
            }
        };
        Ok(match name {
            "single" => ReactorMode::Single,
            "pool" => ReactorMode::WorkerPool {
                workers: at_least_one("workers", values[0].unwrap_or_else(cpus))?,
            },
            "multi" => ReactorMode::MultiReactor {
                sub_reactors: at_least_one("sub_reactors", values[0].unwrap_or_else(cpus))?,
                workers: values[1].unwrap_or(0),
            },
            _ => ReactorMode::Reuseport {
                reactors: at_least_one("reactors", values[0].unwrap_or_else(cpus))?,
            },
        })
    }
}

fn list(known: &[&str]) -> String {
    if known.is_empty() {
        "none".to_string()
    } else {
        known.join(", ")
    }
}

impl fmt::Display for ReactorMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ReactorMode::Single => f.write_str("single"),
            ReactorMode::WorkerPool { workers } => write!(f, "pool:workers={workers}"),
            ReactorMode::MultiReactor {
                sub_reactors,
                workers,
            } => write!(f, "multi:sub_reactors={sub_reactors},workers={workers}"),
            ReactorMode::Reuseport { reactors } => write!(f, "reuseport:reactors={reactors}"),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ReactorMode, String> {
        text.parse::<ReactorMode>().map_err(|e| e.to_string())
    }

    #[test]
    fn each_mode_takes_its_own_parameters() {
        assert_eq!(parse("single"), Ok(ReactorMode::Single));
        assert_eq!(parse("pool:3"), Ok(ReactorMode::WorkerPool { workers: 3 }));
        assert_eq!(
            parse("pool:workers=3"),
            Ok(ReactorMode::WorkerPool { workers: 3 })
        );
        assert_eq!(
            parse("multi:2"),
            Ok(ReactorMode::MultiReactor {
                sub_reactors: 2,
                workers: 0
            })
        );
        assert_eq!(
            parse("multi:2, workers=4"),
            Ok(ReactorMode::MultiReactor {
                sub_reactors: 2,
                workers: 4
            })
        );
        assert_eq!(
            parse("multi:workers=1,reactors=3"),
            Ok(ReactorMode::MultiReactor {
                sub_reactors: 3,
                workers: 1
            })
        );
        assert_eq!(
            parse("reuseport:reactors=5"),
            Ok(ReactorMode::Reuseport { reactors: 5 })
        );
        let cpus = cpus();
        assert_eq!(parse("pool"), Ok(ReactorMode::WorkerPool { workers: cpus }));
        assert_eq!(
            parse("reuseport"),
            Ok(ReactorMode::Reuseport { reactors: cpus })
        );
    }

    #[test]
    fn a_parameter_of_another_mode_is_refused_with_its_name() {
        let e = parse("pool:reactors=2").unwrap_err();
        assert!(e.contains("pool") && e.contains("\"reactors\""), "{e}");
        let e = parse("single:4").unwrap_err();
        assert!(e.contains("single"), "{e}");
        let e = parse("reuseport:workers=2").unwrap_err();
        assert!(e.contains("\"workers\""), "{e}");
        let e = parse("multi:2,4").unwrap_err();
        assert!(e.contains("NAME=VALUE"), "{e}");
        let e = parse("pool:0").unwrap_err();
        assert!(e.contains("workers must be at least 1"), "{e}");
        let e = parse("multi:0").unwrap_err();
        assert!(e.contains("sub_reactors must be at least 1"), "{e}");
        let e = parse("pool:two").unwrap_err();
        assert!(e.contains("whole number"), "{e}");
        let e = parse("pool:1,workers=2").unwrap_err();
        assert!(e.contains("twice"), "{e}");
        let e = parse("threads").unwrap_err();
        assert!(e.contains("unknown reactor mode"), "{e}");
    }

    #[test]
    fn display_round_trips() {
        for mode in [
            ReactorMode::Single,
            ReactorMode::WorkerPool { workers: 2 },
            ReactorMode::MultiReactor {
                sub_reactors: 3,
                workers: 0,
            },
            ReactorMode::MultiReactor {
                sub_reactors: 1,
                workers: 2,
            },
            ReactorMode::Reuseport { reactors: 4 },
        ] {
            assert_eq!(parse(&mode.to_string()), Ok(mode), "{mode}");
        }
    }
}

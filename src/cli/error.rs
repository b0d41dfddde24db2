//! Errors of the command line and the exit codes they map to.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success; for `verify`, the key is valid |
//! | 1 | `verify` only: the key was refused (the reason is printed) |
//! | 2 | bad input: arguments, durations, dates, ids, keys or files that cannot be used |
//! | 3 | not found: no key with that id |
//! | 4 | refused by a store policy |
//! | 5 | storage error: the store is missing, locked, damaged, unwritable, or an I/O failure |
//! | 6 | pepper problem: missing, wrong, invalid, or readable by others |
//! | 7 | the upstream PostgreSQL is unreachable or its schema unusable (feature `postgres`) |
//! | 10 | internal error (a bug: please report it) |

use std::fmt;
use std::process::ExitCode;

use keyward::{Error, ErrorCode, ErrorFamily};
use serde::Serialize;

/// The documented exit statuses of `keyward`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success (for `verify`: the key is valid).
    Ok = 0,
    /// `verify`: the key was refused.
    Refused = 1,
    /// Bad input (clap's usage errors also exit with 2).
    BadInput = 2,
    /// No key with that id.
    NotFound = 3,
    /// Refused by a store policy.
    Policy = 4,
    /// The store cannot be opened, read or written.
    Storage = 5,
    /// The pepper is missing, wrong, invalid or too readable.
    Pepper = 6,
    /// The upstream PostgreSQL is unreachable or unusable.
    Upstream = 7,
    /// A bug.
    Internal = 10,
}

impl Exit {
    /// The process exit status.
    pub fn code(self) -> ExitCode {
        ExitCode::from(self as u8)
    }
}

/// An error to report on stderr, with the exit status it ends the process with.
#[derive(Debug)]
pub struct CliError {
    /// Exit status.
    pub exit: Exit,
    /// Stable upper-case code for scripts (`NOT_FOUND`, `BAD_DURATION`, ...).
    pub code: &'static str,
    /// What went wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl CliError {
    /// Bad input with a stable code.
    pub fn bad_input(code: &'static str, message: impl Into<String>) -> CliError {
        CliError {
            exit: Exit::BadInput,
            code,
            message: message.into(),
            hint: None,
        }
    }

    /// A storage or I/O failure.
    pub fn storage(message: impl Into<String>) -> CliError {
        CliError {
            exit: Exit::Storage,
            code: "STORAGE",
            message: message.into(),
            hint: None,
        }
    }

    /// Adds (or replaces) the hint.
    pub fn hint(mut self, hint: impl Into<String>) -> CliError {
        self.hint = Some(hint.into());
        self
    }

    /// Prints the error on stderr, as text or as one JSON object.
    pub fn report(&self, json: bool) {
        if json {
            #[derive(Serialize)]
            struct Body<'a> {
                code: &'a str,
                message: &'a str,
                hint: Option<&'a str>,
                exit_code: u8,
            }
            #[derive(Serialize)]
            struct Wrapper<'a> {
                error: Body<'a>,
            }
            let wrapper = Wrapper {
                error: Body {
                    code: self.code,
                    message: &self.message,
                    hint: self.hint.as_deref(),
                    exit_code: self.exit as u8,
                },
            };
            eprintln!("{}", serde_json::to_string(&wrapper).unwrap_or_default());
        } else {
            eprintln!("error: {}", self.message);
            if let Some(hint) = &self.hint {
                eprintln!("hint: {hint}");
            }
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The exit status of a library error, from its family (the library's one table of codes).
pub fn exit_for(code: ErrorCode) -> Exit {
    match code.family() {
        ErrorFamily::Ok => Exit::Ok,
        ErrorFamily::Argument | ErrorFamily::Credential => Exit::BadInput,
        ErrorFamily::NotFound => Exit::NotFound,
        ErrorFamily::Policy => Exit::Policy,
        ErrorFamily::Storage => Exit::Storage,
        ErrorFamily::Pepper => Exit::Pepper,
        ErrorFamily::Upstream => Exit::Upstream,
        // A family added to the library after this CLI was written, or a caught panic.
        _ => Exit::Internal,
    }
}

impl From<Error> for CliError {
    fn from(error: Error) -> CliError {
        let code = error.code();
        let hint = match &error {
            Error::NotFound { .. } => Some("list keys with `keyward list` (add `--owner OWNER` to narrow it)".to_owned()),
            Error::PepperMissing { .. } | Error::WrongPepper => Some(
                "pass the store's pepper file with --pepper-file or KEYWARD_PEPPER_FILE (default: <db>.pepper)".to_owned(),
            ),
            Error::Locked { .. } => Some(
                "a process holds the store in single-process mode; the CLI needs every process in multi-process mode (the default)"
                    .to_owned(),
            ),
            Error::PolicyMaxLifetime { .. } => Some("give the key an expiry with --expires, e.g. --expires 90d".to_owned()),
            _ => None,
        };
        CliError {
            exit: exit_for(code),
            code: code.name(),
            message: error.to_string(),
            hint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_library_code_has_an_exit_status() {
        for &code in ErrorCode::ALL {
            let exit = exit_for(code);
            if code != ErrorCode::Ok {
                assert_ne!(exit, Exit::Ok, "{code:?}");
                assert_ne!(exit, Exit::Refused, "{code:?}");
            }
        }
        assert_eq!(exit_for(ErrorCode::NotFound), Exit::NotFound);
        assert_eq!(exit_for(ErrorCode::PolicyLastActiveKey), Exit::Policy);
        assert_eq!(exit_for(ErrorCode::PepperMissing), Exit::Pepper);
        assert_eq!(exit_for(ErrorCode::Locked), Exit::Storage);
    }
}

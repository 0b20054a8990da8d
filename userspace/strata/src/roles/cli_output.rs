//! Operator commands print to a terminal or a pipe: when the reader of the pipe goes away
//! (`strata control status | head`), the command ends quietly, as Unix tools do, instead of
//! panicking on a failed print.

/// Restores SIGPIPE's default action (end the process) for a command that only prints. Never
/// for the serving roles: their sockets rely on SIGPIPE being ignored (Rust's default).
pub fn exit_quietly_on_closed_stdout() {
    // SAFETY: setting a signal's disposition to its default has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

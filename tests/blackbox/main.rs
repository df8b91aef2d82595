//! Black-box tests: the real `loyalty` binary and real compiled plugins, driven from
//! outside as a plugin author or a partner app would.

mod api;
mod common;
mod crash;
mod dashboard;
mod design;
mod hardening;
mod programmes;
mod runner;
mod webhooks;

//! Black-box tests: the real server on port 0, a fresh database per test, on SQLite and PostgreSQL.

mod helpers;

mod accounts;
mod chat;
mod chat_storage;
mod family;
mod family_pages;
mod operations;
mod pages;
mod providers;
mod storage;

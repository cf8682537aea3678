//! Racetrack dashboard. For now only its application layer: the portfolio page's filter
//! expressions and purge score, kept free of HTTP so the rules can be tested on their own and
//! reused by the web layer when it arrives (docs/architecture.md, "Dashboard: portfolio filters
//! and purge score").

pub mod portfolio;

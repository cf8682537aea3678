//! The portfolio's filter expressions (user input from the page's query string): parsing and
//! matching never panic, whatever the expression and the cell; an empty box restricts nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    dashboard::portfolio::filter::check_properties(data);
});

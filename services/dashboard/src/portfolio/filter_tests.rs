use super::*;

fn filter(expr: &str, ty: ColumnType) -> ColumnFilter {
    match ColumnFilter::parse(expr, ty) {
        Ok(f) => f,
        Err(e) => panic!("{expr:?} should parse: {e}"),
    }
}

fn text(expr: &str, cell: &str) -> bool {
    filter(expr, ColumnType::Text).matches(cell)
}

fn number(expr: &str, cell: &str) -> bool {
    filter(expr, ColumnType::Number).matches(cell)
}

fn date(expr: &str, cell: &str) -> bool {
    filter(expr, ColumnType::Date).matches(cell)
}

#[test]
fn an_empty_filter_matches_every_cell() {
    for expr in ["", "   ", "\t\n"] {
        let f = filter(expr, ColumnType::Text);
        assert!(f.is_empty());
        assert!(f.matches(""));
        assert!(f.matches("anything"));
    }
    assert!(!filter("x", ColumnType::Text).is_empty());
}

#[test]
fn plain_terms_are_case_insensitive_substrings() {
    assert!(text("RUN", "running"));
    assert!(text("nin", "RUNNING"));
    assert!(text("  ning  ", "running"));
    assert!(!text("lost", "running"));
    assert!(text("1", "10"));
    assert!(text("ünï", "ÜNÏCODE"));
}

#[test]
fn plain_terms_on_number_columns_also_compare_numbers() {
    // Same number written differently.
    assert!(number("12.50", "12.5"));
    // The cell's number printed contains the term's number.
    assert!(number("2", "12.5"));
    assert!(number("5 days", "15"));
    assert!(!number("3", "12.5"));
    // A zero cell is not a number to this test: plain substring.
    assert!(number("0", "0"));
    assert!(!number("1", "0"));
    // On a text column the term is only a substring of the text.
    assert!(!text("12.50", "12.5"));
    assert!(!text("5 days", "15"));
}

#[test]
fn comparison_operators_compare_numbers() {
    assert!(number(">20", "30"));
    assert!(!number(">30", "30"));
    assert!(number(">=30", "30"));
    assert!(!number(">=30.01", "30"));
    assert!(number("<=30", "30"));
    assert!(!number("<30", "30"));
    assert!(number("< 31", "30"));
    assert!(number("<1.5", "1.25"));
    assert!(number(">-3", "-2"));
    // Comparisons read numbers on text columns too, digits first.
    assert!(text(">1.1", "1.2.3"));
    assert!(text("<1.3", "1.2.3"));
    assert!(!text(">1.2", "1.2.3"));
    assert!(text(">=1000", "$ 1,000"));
    assert!(text(">=2", "v2-beta"));
}

#[test]
fn parentheses_make_a_number_negative() {
    assert!(number("<0", "(5)"));
    assert!(number("=(5)", "(5)"));
    assert!(number(">(10)", "-5"));
    assert!(!number(">(10)", "-11"));
    assert_eq!(extract_number("(1.5)"), -1.5);
    // Greedy up to the line's last `)`: `a (2) b (3)` reads as `a -2) b (3`, digits `-23`.
    assert_eq!(extract_number("a (2) b (3)"), -23.0);
    // Parentheses across lines do not pair.
    assert_eq!(extract_number("(2\n)"), 2.0);
}

#[test]
fn reading_numbers_out_of_text() {
    assert_eq!(extract_number("1.2.3"), 1.2);
    assert_eq!(extract_number("abc"), 0.0);
    assert_eq!(extract_number("-"), 0.0);
    assert_eq!(extract_number("--5"), 0.0);
    assert_eq!(extract_number("5-3"), 5.0);
    assert_eq!(extract_number(".5"), 0.5);
    assert_eq!(extract_number("-.5"), -0.5);
    assert_eq!(extract_number("7."), 7.0);
    assert_eq!(extract_number("12 days"), 12.0);
    assert_eq!(extract_number("1e5"), 15.0);
    assert_eq!(leading_float("."), None);
}

#[test]
fn cells_without_a_number_never_compare() {
    assert!(!number("<5", "abc"));
    assert!(!number(">-5", "abc"));
    assert!(!number("<=0", "never"));
}

#[test]
fn an_empty_cell_compares_as_zero() {
    assert!(number("<5", ""));
    assert!(number(">=0", ""));
    assert!(!number(">0", ""));
}

#[test]
fn an_operand_without_a_number_is_zero() {
    assert!(number("<abc", "-1"));
    assert!(!number("<abc", "1"));
}

#[test]
fn operators_are_found_anywhere_in_the_term() {
    // `a>b` is `>` with the operand `ab` (zero).
    assert!(number("a>b", "5"));
    assert!(!number("a>b", "-5"));
    // `5<=x` is `<=` with the operand `5x` (five).
    assert!(number("5<=x", "5"));
    assert!(!number("5<=x", "6"));
    // Only the first occurrence is removed.
    // `!!` is "does not contain `!`".
    assert!(text("!!", "abc"));
    assert!(!text("!!", "a!"));
}

#[test]
fn not_contains() {
    assert!(!text("!run", "running"));
    assert!(text("!run", "error"));
    assert!(text("!RUN", "error"));
    assert!(!text("!ERR", "error"));
    // Nothing lacks the empty string.
    assert!(!text("!", "error"));
    assert!(!text("!", ""));
}

#[test]
fn contains_explicitly() {
    assert!(text("*nin", "running"));
    assert!(!text("*lost", "running"));
    assert!(text("*", "anything"));
    assert!(text("*", ""));
    // `*` takes its operand literally, regex characters included.
    assert!(text("*a.c", "xa.cx"));
    assert!(!text("*a.c", "abc"));
}

#[test]
fn equals_is_a_whole_cell_match() {
    assert!(text("=running", "running"));
    assert!(text("=RUNNING", "Running"));
    assert!(text("=running", "  running  "));
    assert!(!text("=running", "running2"));
    assert!(!text("=run", "running"));
    // The operand's own leading space is required literally.
    assert!(!text("= running", "running"));
    assert!(equals_padded(" \t foo \n", "foo"));
    assert!(equals_padded("  foo", " foo"));
    assert!(!equals_padded("foo", " foo"));
    // `=` alone matches empty cells only.
    assert!(text("=", ""));
    assert!(!text("=", "x"));
    // Regex characters are literal.
    assert!(text("=a.b", "a.b"));
    assert!(!text("=a.b", "axb"));
}

#[test]
fn starts_with_and_ends_with() {
    assert!(text("{run", "running"));
    assert!(text("{RUN", "Running"));
    assert!(!text("{ning", "running"));
    assert!(text("}ing", "running"));
    assert!(!text("}run", "running"));
    assert!(text("{", "x"));
    assert!(text("}", ""));
}

#[test]
fn empty_and_nonempty() {
    assert!(text("[empty]", ""));
    assert!(text("[empty]", "   "));
    assert!(!text("[empty]", "x"));
    assert!(text("[nonempty]", "x"));
    assert!(!text("[nonempty]", ""));
    assert!(text(" [EMPTY] ", ""));
    assert!(number("[empty]", ""));
    // Only the exact word is the operator; anything around it makes a substring.
    assert!(!text("x[empty]", ""));
    assert!(text("[empty]x", "a [empty]x"));
}

#[test]
fn regular_expressions() {
    assert!(text("rgx:^run.*g$", "running"));
    assert!(!text("rgx:^run$", "running"));
    assert!(text("rgx:n{2}", "running"));
    // Unanchored search.
    assert!(text("rgx:nn", "running"));
    // Case-insensitive, and the pattern itself is lower-cased.
    assert!(text("RGX:^RUN", "Running"));
    assert!(text("rgx:\\D", "5"));
    // Number columns too.
    assert!(number("rgx:^1\\.", "1.25"));
}

#[test]
fn operator_priority() {
    // `rgx:` first: the rest is a pattern even with other operators in it.
    assert!(text("rgx:a<b", "xa<b"));
    assert!(!text("rgx:a<b", "5"));
    // `<=` before `<`, `>=` before `>`.
    assert!(number("<=5", "5"));
    assert!(number(">=5", "5"));
    // Comparisons before `!`: `!<3` is `<` with operand `!3`.
    assert!(number("!<3", "2"));
    // `!` before `*`: the operand keeps the `*`.
    assert!(text("!*x", "x"));
    assert!(!text("!*x", "a*x"));
    // `*` before `=`.
    assert!(text("*=x", "a=x"));
    assert!(!text("*=x", "x"));
    // `=` before `{`, `{` before `}`.
    assert!(text("={a", "{a"));
    assert!(!text("={a", "a"));
    assert!(text("{}a", "}ab"));
}

#[test]
fn or_stops_at_the_first_match() {
    assert!(text("running || error", "running"));
    assert!(text("running || error", "error"));
    assert!(!text("running || error", "lost"));
    assert!(number(">100 || <10", "5"));
    assert!(number(">100 || <10", "500"));
    assert!(!number(">100 || <10", "50"));
    assert!(text("=lost||=error||=orphaned", "orphaned"));
    // An empty part is the empty substring: it matches everything.
    assert!(text("lost ||", "running"));
}

#[test]
fn and_needs_every_part() {
    assert!(text("{a && }z", "abcz"));
    assert!(!text("{a && }z", "abc"));
    assert!(!text("{a && }z", "bcz"));
    assert!(number(">=10 && <20", "10"));
    assert!(!number(">=10 && <20", "20"));
    assert!(text("!lost && !error", "running"));
    assert!(!text("!lost && !error", "error"));
}

#[test]
fn with_both_separators_only_the_first_or_part_decides() {
    // `a&&b||c`: the first `||` part is the literal term `a&&b`.
    assert!(!text("a&&b||c", "c"));
    assert!(!text("a&&b||c", "ab"));
    assert!(text("a&&b||c", "xa&&by"));
    // `a||b&&c`: only `a` decides.
    assert!(text("a||b&&c", "a"));
    assert!(!text("a||b&&c", "b&&c"));
    // Later parts are never read, so even an invalid pattern there is no error.
    assert!(ColumnFilter::parse("a||b&&rgx:(", ColumnType::Text).is_ok());
}

#[test]
fn date_comparisons() {
    let cell = "2026-01-15T10:00:00+00:00";
    assert!(date("<2026-02-01", cell));
    assert!(!date(">2026-02-01", cell));
    assert!(date(">=2026-01-15T10:00:00Z", cell));
    assert!(date("<=2026-01-15 10:00:00", cell));
    assert!(!date("<2026-01-15T10:00:00Z", cell));
    assert!(date(">2026-01-15", cell));
    assert!(date("=2026-01-15 10:00:00", cell));
    assert!(date("=2026-01-15T11:00:00+01:00", cell));
    assert!(!date("!2026-01-15 10:00", cell));
    assert!(date("!2026-01-16", cell));
    // A bare date is an equality test, not a substring: midnight is not 10 o'clock.
    assert!(date("2026-01-15T10:00:00Z", cell));
    assert!(!date("2026-01-15", cell));
    assert!(date("2026-01-15", "2026-01-15T00:00:00Z"));
    // Equal to the second.
    assert!(date("=2026-01-15T10:00:00Z", "2026-01-15T10:00:00.500Z"));
}

#[test]
fn date_columns_fall_back_to_substrings() {
    let cell = "2026-01-15T10:00:00+00:00";
    assert!(date("*2026-01", cell));
    assert!(date("01-15", cell));
    // Operands that are not dates make the whole term a substring.
    assert!(!date("<soon", cell));
    assert!(date("<soon", "x<soon"));
    // `rgx:`, `{` and `}` mean nothing special on dates.
    assert!(!date("rgx:^2026", cell));
    assert!(!date("{2026", cell));
    assert!(!date("}00:00", cell));
    assert!(date("[empty]", ""));
    assert!(!date("[empty]", cell));
    assert!(date("[nonempty]", cell));
    // An unreadable cell date is before, after and equal to nothing, and differs from all.
    assert!(!date("<2026-01-01", "never"));
    assert!(!date(">2026-01-01", "never"));
    assert!(!date("=2026-01-01", "never"));
    assert!(date("!2026-01-01", "never"));
}

#[test]
fn bad_input_is_an_error_value() {
    let too_long = "a".repeat(MAX_FILTER_LEN + 1);
    assert_eq!(
        ColumnFilter::parse(&too_long, ColumnType::Text).err(),
        Some(FilterError::TooLong {
            len: MAX_FILTER_LEN + 1,
            max: MAX_FILTER_LEN
        })
    );
    assert!(ColumnFilter::parse(&"a".repeat(MAX_FILTER_LEN), ColumnType::Text).is_ok());

    for unbalanced in ["rgx:(a", "rgx:a)", "rgx:[a", "rgx:a{2", "rgx:*a"] {
        match ColumnFilter::parse(unbalanced, ColumnType::Text) {
            Err(FilterError::InvalidRegex { pattern, reason }) => {
                assert_eq!(pattern, unbalanced.trim_start_matches("rgx:"));
                assert!(!reason.is_empty());
            }
            other => panic!("{unbalanced:?} gave {other:?}"),
        }
    }
    // Syntax the regex engine does not offer is reported, not ignored.
    assert!(matches!(
        ColumnFilter::parse("rgx:(?=a)", ColumnType::Text),
        Err(FilterError::InvalidRegex { .. })
    ));
    // An invalid pattern inside an `||` list is reported too.
    assert!(matches!(
        ColumnFilter::parse("a || rgx:(", ColumnType::Number),
        Err(FilterError::InvalidRegex { .. })
    ));
    // On date columns `rgx:` is plain text.
    assert!(ColumnFilter::parse("rgx:(", ColumnType::Date).is_ok());

    match ColumnFilter::parse("rgx:a{1000}{1000}", ColumnType::Text) {
        Err(FilterError::RegexTooLarge { limit, .. }) => assert_eq!(limit, REGEX_SIZE_LIMIT),
        other => panic!("a huge pattern gave {other:?}"),
    }
    let message = FilterError::TooLong {
        len: 2000,
        max: 1024,
    }
    .to_string();
    assert!(message.contains("2000") && message.contains("1024"));
}

#[test]
fn row_filters_need_every_column() {
    let columns = crate::portfolio::portfolio_column_types();
    let f = RowFilter::parse(&columns, &[(0, "{adder"), (2, "running||error"), (4, "  ")])
        .expect("valid filters");
    fn row(name: &str, status: &str) -> Vec<String> {
        [name, "1.0.0", status, "python3:2.4.0", ""]
            .map(String::from)
            .to_vec()
    }
    assert!(f.matches(&row("adder", "RUNNING")));
    assert!(f.matches(&row("adder-v2", "ERROR")));
    assert!(!f.matches(&row("adder", "LOST")));
    assert!(!f.matches(&row("subtract", "RUNNING")));
    // A short row: missing cells are empty.
    assert!(!f.matches(&["adder"]));

    let none = RowFilter::parse(&columns, &[]).expect("no filters");
    assert!(none.matches(&row("x", "y")));

    assert_eq!(
        RowFilter::parse(&columns, &[(15, "x")]).err(),
        Some(FilterError::UnknownColumn {
            column: 15,
            count: 15
        })
    );
    assert_eq!(
        RowFilter::parse(&columns, &[(12, "x")]).err(),
        Some(FilterError::NotFilterable { column: 12 })
    );
    assert!(matches!(
        RowFilter::parse(&columns, &[(7, "rgx:(")]),
        Err(FilterError::InvalidRegex { .. })
    ));
}

/// Deterministic pseudo-random numbers for the property tests (no extra crate needed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.next() % items.len()]
    }

    fn string(&mut self, pieces: &[&str], max: usize) -> String {
        let n = self.next() % (max + 1);
        (0..n).map(|_| self.pick(pieces)).collect()
    }
}

const CELL_PIECES: &[&str] = &[
    "a",
    "B",
    "run",
    "ning",
    "1",
    "0",
    "-",
    ".",
    "(",
    ")",
    " ",
    "é",
    "2026-01-15",
    "x",
    "\n",
];

#[test]
fn not_is_the_complement_of_like() {
    let mut rng = Lcg(7);
    let plain = ["a", "b", "run", "1", "0", ".", "-", " ", "é", "x", "("];
    for _ in 0..2000 {
        let operand = rng.string(&plain, 3);
        let cell = rng.string(CELL_PIECES, 6);
        for ty in [ColumnType::Text, ColumnType::Number] {
            let not = filter(&format!("!{operand}"), ty).matches(&cell);
            let like = filter(&format!("*{operand}"), ty).matches(&cell);
            assert_ne!(not, like, "operand {operand:?}, cell {cell:?}");
        }
        let empty = text("[empty]", &cell);
        let nonempty = text("[nonempty]", &cell);
        assert_ne!(empty, nonempty, "cell {cell:?}");
    }
}

#[test]
fn comparisons_split_readable_numbers_in_two() {
    let mut rng = Lcg(11);
    let digits = ["1", "2", "0", ".", "-", "5", "9"];
    for _ in 0..2000 {
        let operand = rng.string(&digits, 4);
        let cell = rng.string(&digits, 4);
        let value = Cell::new(&cell).number();
        if value.is_nan() {
            continue;
        }
        let at_most = number(&format!("<={operand}"), &cell);
        let above = number(&format!(">{operand}"), &cell);
        assert_ne!(at_most, above, "operand {operand:?}, cell {cell:?}");
        let at_least = number(&format!(">={operand}"), &cell);
        let below = number(&format!("<{operand}"), &cell);
        assert_ne!(at_least, below, "operand {operand:?}, cell {cell:?}");
    }
}

#[test]
fn or_and_and_agree_with_their_parts() {
    let mut rng = Lcg(13);
    let terms = [
        "a",
        "run",
        "!run",
        "*1",
        "=x",
        "{a",
        "}g",
        ">0",
        "<1",
        "[empty]",
        "[nonempty]",
        "rgx:^r",
    ];
    for _ in 0..2000 {
        let left = rng.pick(&terms);
        let right = rng.pick(&terms);
        let cell = rng.string(CELL_PIECES, 5);
        let l = text(left, &cell);
        let r = text(right, &cell);
        assert_eq!(text(&format!("{left} || {right}"), &cell), l || r);
        assert_eq!(text(&format!("{left}&&{right}"), &cell), l && r);
    }
}

#[test]
fn arbitrary_input_never_panics() {
    let mut rng = Lcg(17);
    let pieces = [
        "<",
        "<=",
        ">",
        ">=",
        "=",
        "*",
        "!",
        "{",
        "}",
        "||",
        "&&",
        "[empty]",
        "[nonempty]",
        "rgx:",
        "(",
        ")",
        "[",
        "]",
        "\\",
        "a",
        "1",
        ".",
        "-",
        " ",
        "é",
        "2026-01-15",
        "t",
        "z",
        "+",
        "?",
        "|",
        "&",
        "$",
        "^",
        "{2}",
    ];
    let types = [ColumnType::Text, ColumnType::Number, ColumnType::Date];
    for _ in 0..5000 {
        let expr = rng.string(&pieces, 8);
        let cell = rng.string(CELL_PIECES, 6);
        let ty = types[rng.next() % types.len()];
        if let Ok(f) = ColumnFilter::parse(&expr, ty) {
            let _ = f.matches(&cell);
        }
    }
}

//! Property tests of env-file editing.

use super::*;
use proptest::prelude::*;

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Z_]{1,8}=[a-z0-9 '\"#]{0,12}",
        "export [A-Z_]{1,8}=[a-z0-9]{0,8}",
        "# [ -~]{0,20}",
        "MD_TOKEN=[a-z0-9'\" ]{0,10}",
        "export MD_TOKEN=\"[a-z\n]{0,10}\"",
        "[ -~]{0,20}",
    ]
}

fn clean_line() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Z_]{1,8}=[a-z0-9]{0,12}",
        "export [A-Z_]{1,8}=[a-z0-9]{0,8}",
        "# [a-z ]{0,20}",
        "MD_TOKEN=[a-z0-9]{0,10}",
        "[A-Z_]{1,8}='[a-z \n]{0,10}'",
        "",
    ]
}

/// The other entries, in order, and the values the key is set to.
fn shape(text: &str) -> (Vec<String>, Vec<String>) {
    let all = entries(text).unwrap();
    let others = all
        .iter()
        .filter(|e| e.assignment.as_ref().is_none_or(|a| a.key != "MD_TOKEN"))
        .map(|e| e.text.trim_end_matches(['\r', '\n']).to_string())
        .collect();
    let set = all
        .iter()
        .filter_map(|e| {
            e.assignment
                .as_ref()
                .filter(|a| a.key == "MD_TOKEN")
                .map(|a| unquote(a.value))
        })
        .collect();
    (others, set)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]
    /// A well-formed file is always edited (refused only when it sets the
    /// key more than once): every other entry kept byte for byte, in order,
    /// and the key set once, to the new value.
    #[test]
    fn other_entries_are_kept_byte_for_byte(lines in proptest::collection::vec(clean_line(), 0..12), crlf in any::<bool>(), value in "[A-Za-z0-9._-]{1,40}") {
        let nl = if crlf { "\r\n" } else { "\n" };
        let content = lines.join(nl);
        let times = shape(&content).1.len();
        match edit(&content, "MD_TOKEN", &value) {
            Ok((after, _)) => {
                prop_assert!(times <= 1);
                prop_assert_eq!(shape(&after).0, shape(&content).0);
                prop_assert_eq!(shape(&after).1, vec![value.clone()]);
            }
            Err(e) => prop_assert!(times > 1, "{}", e),
        }
    }

    /// Any file at all is either refused (left as it was) or edited with the
    /// same guarantees: never half-edited.
    #[test]
    fn any_file_is_refused_or_edited_right(lines in proptest::collection::vec(line(), 0..12), crlf in any::<bool>(), value in "[A-Za-z0-9._-]{1,40}") {
        let nl = if crlf { "\r\n" } else { "\n" };
        let content = lines.join(nl);
        if let Ok((after, _)) = edit(&content, "MD_TOKEN", &value) {
            prop_assert_eq!(shape(&after).0, shape(&content).0);
            prop_assert_eq!(shape(&after).1, vec![value.clone()]);
        }
    }
}

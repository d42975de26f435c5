//! Where a key path is written in the YAML source, and which key path a position lies under.
//!
//! Value checks run on deserialized structs, which no longer know where their values came from,
//! so they name a key path such as `sampling.tail_sampling.policies[2].latency.threshold_ms`.
//! [`Locator`] walks the source once with the event parser serde-saphyr itself parses with and
//! records every key, value and sequence item under the path it spells. A path is then placed
//! at its key (or item), falling back to the nearest ancestor that is written when the path is
//! not (a missing required block); a position is named by the innermost path that covers it.
//!
//! Values reached through aliases or `<<` merge keys are not followed: a path inside one is
//! placed at the alias or merge key. Parsed text is located after `${env:NAME}` expansion, so a
//! value expanded earlier on the same line (in a flow mapping) shifts the columns after it.

use serde_saphyr::granit_parser::{Event, Marker, Parser};

/// A line and a column, both counted from 1 as editors count them; columns in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Position {
    pub line: u64,
    pub column: u64,
}

impl Position {
    const START: Position = Position { line: 1, column: 1 };

    fn of(marker: Marker) -> Self {
        Position {
            line: marker.line() as u64,
            column: marker.col() as u64 + 1,
        }
    }

    /// The position of byte `offset` of `text`.
    pub(crate) fn of_offset(text: &str, offset: usize) -> Self {
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Position {
            line: before.matches('\n').count() as u64 + 1,
            column: before[line_start..].chars().count() as u64 + 1,
        }
    }
}

/// A key, value or item of the source, by key path.
#[derive(Debug)]
struct Node {
    path: String,
    start: Position,
    end: Position,
    /// A mapping or sequence, rather than a key or scalar.
    collection: bool,
}

/// The key paths of one YAML document and where each is written.
#[derive(Debug, Default)]
pub(crate) struct Locator {
    /// In source order; a mapping entry's key comes before its value.
    nodes: Vec<Node>,
}

/// A collection being walked. `path` is `None` inside a non-scalar key, which names nothing.
enum Frame {
    Mapping {
        path: Option<String>,
        /// `None` while a key is expected; then the path of the value that follows.
        value: Option<Option<String>>,
        node: usize,
    },
    Sequence {
        path: Option<String>,
        next: usize,
        node: usize,
    },
}

impl Locator {
    /// Walks the first document of `text`. Malformed YAML stops the walk where it fails; what
    /// was walked until then is still located.
    pub(crate) fn new(text: &str) -> Self {
        let mut locator = Locator::default();
        let mut stack: Vec<Frame> = Vec::new();

        for next in Parser::new_from_str(text) {
            let Ok((event, span)) = next else { break };
            let (start, end) = (Position::of(span.start), Position::of(span.end));
            match event {
                Event::Scalar(..) | Event::Alias(_) => {
                    if let Some(path) = locator.slot(&mut stack, &event, start, end) {
                        locator.record(path, start, end);
                    }
                }
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    let path = locator.slot(&mut stack, &event, start, end);
                    let node = locator.nodes.len();
                    if let Some(path) = &path {
                        locator.record(path.clone(), start, end);
                        locator.nodes[node].collection = true;
                    }
                    stack.push(match event {
                        Event::MappingStart(..) => Frame::Mapping {
                            path,
                            value: None,
                            node,
                        },
                        _ => Frame::Sequence {
                            path,
                            next: 0,
                            node,
                        },
                    });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    let node = match stack.pop() {
                        Some(Frame::Mapping { path, node, .. })
                        | Some(Frame::Sequence { path, node, .. }) => path.map(|_| node),
                        None => None,
                    };
                    if let Some(node) = node.and_then(|node| locator.nodes.get_mut(node)) {
                        node.end = end;
                    }
                }
                Event::DocumentEnd => break,
                _ => {}
            }
        }
        locator
    }

    /// Where `path` is written, or its nearest written ancestor, or the document's start.
    pub(crate) fn locate(&self, path: &str) -> Position {
        let mut path = path;
        loop {
            if let Some(node) = self.nodes.iter().find(|node| node.path == path) {
                return node.start;
            }
            match path.rfind(['.', '[']) {
                Some(cut) => path = &path[..cut],
                None if !path.is_empty() => path = "",
                None => return Position::START,
            }
        }
    }

    /// The innermost key path whose key or value covers `position`; `None` outside all keys.
    pub(crate) fn path_at(&self, position: Position) -> Option<&str> {
        self.nodes
            .iter()
            .filter(|node| {
                node.start == position || (node.start <= position && position < node.end)
            })
            .map(|node| node.path.as_str())
            .filter(|path| !path.is_empty())
            .max_by_key(|path| path.len())
    }

    /// The innermost mapping or sequence that starts at `position`, or whose first entry does.
    /// The parser reports a problem with a whole mapping at its first key, so a position there
    /// may mean either; the parser's message tells which.
    pub(crate) fn collection_at(&self, position: Position) -> Option<&str> {
        let first_entry_at =
            |i: usize| self.nodes.get(i + 1).map(|node| node.start) == Some(position);
        self.nodes
            .iter()
            .enumerate()
            .filter(|(i, node)| node.collection && (node.start == position || first_entry_at(*i)))
            .map(|(_, node)| node.path.as_str())
            .max_by_key(|path| path.len())
    }

    fn record(&mut self, path: String, start: Position, end: Position) {
        self.nodes.push(Node {
            path,
            start,
            end,
            collection: false,
        });
    }

    /// The path of the node `event` starts, given where it sits in its parent; records a key.
    /// A mapping key yields `None` (it is no value), as does anything inside a non-scalar key.
    fn slot(
        &mut self,
        stack: &mut [Frame],
        event: &Event<'_>,
        start: Position,
        end: Position,
    ) -> Option<String> {
        match stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Sequence { path, next, .. }) => {
                let item = path.as_ref().map(|path| format!("{path}[{next}]"));
                *next += 1;
                item
            }
            Some(Frame::Mapping { path, value, .. }) => {
                if let Some(value_path) = value.take() {
                    return value_path;
                }
                let key_path = match (event, path.as_ref()) {
                    (Event::Scalar(key, ..), Some(parent)) if parent.is_empty() => {
                        Some(key.to_string())
                    }
                    (Event::Scalar(key, ..), Some(parent)) => Some(format!("{parent}.{key}")),
                    _ => None,
                };
                if let Some(key_path) = &key_path {
                    self.record(key_path.clone(), start, end);
                }
                *value = Some(key_path);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
sampling:
  mode: tail
  tail_sampling:
    policies:
      - name: a
        type: latency
        latency: {threshold_ms: 5}
      - {name: b, type: status_code, status_code: {status_codes: [OK, Bad]}}
";

    fn at(line: u64, column: u64) -> Position {
        Position { line, column }
    }

    #[test]
    fn paths_are_placed_at_their_keys_and_items() {
        let locator = Locator::new(TEXT);
        let policies = "sampling.tail_sampling.policies";
        assert_eq!(locator.locate("sampling.mode"), at(2, 3));
        assert_eq!(locator.locate(&format!("{policies}[0]")), at(5, 9));
        assert_eq!(
            locator.locate(&format!("{policies}[0].latency.threshold_ms")),
            at(7, 19)
        );
        assert_eq!(locator.locate(&format!("{policies}[1].type")), at(8, 19));
        let code = format!("{policies}[1].status_code.status_codes[1]");
        assert_eq!(locator.locate(&code), at(8, 71));
    }

    #[test]
    fn a_missing_path_falls_back_to_its_nearest_ancestor() {
        let locator = Locator::new(TEXT);
        let missing = "sampling.tail_sampling.policies[0].latency.upper_threshold_ms";
        assert_eq!(locator.locate(missing), at(7, 9));
        assert_eq!(locator.locate("sampling.head.percentage"), at(1, 1));
        assert_eq!(locator.locate("storage.retention"), at(1, 1));
    }

    #[test]
    fn positions_are_named_by_the_innermost_path() {
        let locator = Locator::new(TEXT);
        assert_eq!(locator.path_at(at(2, 9)), Some("sampling.mode"));
        let threshold = "sampling.tail_sampling.policies[0].latency.threshold_ms";
        assert_eq!(locator.path_at(at(7, 33)), Some(threshold));
        assert_eq!(locator.path_at(at(1, 1)), Some("sampling"));
        let first = "sampling.tail_sampling.policies[0]";
        assert_eq!(locator.path_at(at(5, 9)), Some(&*format!("{first}.name")));
        assert_eq!(locator.collection_at(at(5, 9)), Some(first));
        assert_eq!(locator.collection_at(at(5, 11)), None);
        let block = "sampling.tail_sampling.policies[0].latency";
        assert_eq!(locator.collection_at(at(7, 19)), Some(block));
    }

    #[test]
    fn byte_offsets_become_character_columns() {
        let text = "a: é\nb: ${env:X}\n";
        let offset = text.find("${").unwrap();
        assert_eq!(Position::of_offset(text, offset), at(2, 4));
        assert_eq!(Position::of_offset("é: x", "é: ".len()), at(1, 4));
    }
}

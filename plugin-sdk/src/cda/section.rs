//! Sections of the structured body.

use super::{Cd, Node, cd, child, children, location, narrative_text, oids, text_of};

/// A `section` of the structured body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section<'a, 'input> {
    /// The `section` element.
    pub node: Node<'a, 'input>,
}

impl<'a, 'input> Section<'a, 'input> {
    /// The section's `code` (LOINC).
    pub fn code(&self) -> Option<Cd> {
        child(self.node, "code").map(cd)
    }

    /// Whether the section's code is this LOINC code.
    pub fn has_loinc(&self, code: &str) -> bool {
        child(self.node, "code").is_some_and(|c| {
            c.attribute("code") == Some(code) && c.attribute("codeSystem") == Some(oids::LOINC)
        })
    }

    /// The `title`, `None` when absent or blank.
    pub fn title(&self) -> Option<String> {
        child(self.node, "title").and_then(text_of)
    }

    /// The narrative `text` as plain text ([`narrative_text`]); empty when there is none.
    pub fn text(&self) -> String {
        child(self.node, "text")
            .map(narrative_text)
            .unwrap_or_default()
    }

    /// The nested sections (`component/section`).
    pub fn sections(&self) -> impl Iterator<Item = Section<'a, 'input>> + use<'a, 'input> {
        children(self.node, "component")
            .filter_map(|c| child(c, "section"))
            .map(|node| Section { node })
    }

    /// The clinical statements of the entries (the element inside each `entry`:
    /// `observation`, `act`, `procedure`, `organizer`, `substanceAdministration`...).
    pub fn entries(&self) -> impl Iterator<Item = Node<'a, 'input>> + use<'a, 'input> {
        children(self.node, "entry").filter_map(|e| e.children().find(|c| c.is_element()))
    }

    /// Where the section is ([`location`]).
    pub fn location(&self) -> String {
        location(self.node)
    }
}

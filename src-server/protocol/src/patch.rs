//! What the teacher sends to change the lesson (`set`, PROTOCOL.md §5) and what the server
//! broadcasts (`patch`): absent fields are unchanged, `null` clears.

use serde::{Deserialize, Serialize};

use crate::fields::{Doc, Mode};
use crate::ink::LiveStep;
use crate::marks::MarkOp;
use crate::shapes::{Highlight, Pos, Region};

/// The teacher's `set` request (§5). `doc` is a document id here, not the document object.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct SetPatch {
    /// The id of a document the server holds, or null to close the document.
    #[serde(default, deserialize_with = "double", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub doc: Option<Option<String>>,
    /// 1-based page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    /// The teacher's pointer, or null.
    #[serde(default, deserialize_with = "double", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub pos: Option<Option<Pos>>,
    /// Zoom factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zoom: Option<f64>,
    /// The region of the page shown, or null for the whole page.
    #[serde(default, deserialize_with = "double", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub view: Option<Option<Region>>,
    /// Highlighted rectangle, or null.
    #[serde(default, deserialize_with = "double", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub highlight: Option<Option<Highlight>>,
    /// Follow or free.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Notice text, or null.
    #[serde(default, deserialize_with = "double", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub notice: Option<Option<String>>,
    /// Changes to the marks that stay on the pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub marks: Option<Vec<MarkOp>>,
    /// The next points of the stroke being drawn, or null when it ends (section M).
    #[serde(default, deserialize_with = "double", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub live: Option<Option<LiveStep>>,
    /// Present only to be refused: `ended` is set by `end`, never by `set`.
    #[serde(default, skip_serializing)]
    #[cfg_attr(feature = "ts", ts(skip))]
    pub ended: Option<serde_json::Value>,
}

/// Deserializes a present field (even `null`) as `Some(..)`, so that "absent" and "null" differ.
pub(crate) fn double<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

/// A change to the lesson state as the server broadcasts it: absent fields are unchanged, `null` clears.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct Patch {
    /// New document (whole object), or null.
    #[serde(default, deserialize_with = "double", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub doc: Option<Option<Doc>>,
    /// New page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub page: Option<u32>,
    /// New pointer, or null.
    #[serde(default, deserialize_with = "double", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub pos: Option<Option<Pos>>,
    /// New zoom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub zoom: Option<f64>,
    /// New region shown, or null for the whole page.
    #[serde(default, deserialize_with = "double", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub view: Option<Option<Region>>,
    /// New highlight, or null.
    #[serde(default, deserialize_with = "double", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub highlight: Option<Option<Highlight>>,
    /// New mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub mode: Option<Mode>,
    /// New notice, or null.
    #[serde(default, deserialize_with = "double", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub notice: Option<Option<String>>,
    /// Set to true by `end`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub ended: Option<bool>,
    /// Changes to the marks that stay on the pages (applied after a new `doc` clears them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub marks: Option<Vec<MarkOp>>,
    /// The next points of the stroke being drawn, or null when it ends.
    #[serde(default, deserialize_with = "double", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub live: Option<Option<LiveStep>>,
}

impl Patch {
    /// True when the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self == &Patch::default()
    }

    /// True when the patch only moves the pointer or the teacher's region (and the zoom it stands
    /// for), or draws the stroke under way: what streams at the display's rate while the teacher
    /// points, pinches, pans or writes. Students do not acknowledge it, and its `ok` does not wait for
    /// the disk (a stroke is kept, and logged, by the `set` that ends it).
    pub fn is_motion(&self) -> bool {
        (self.pos.is_some() || self.view.is_some() || self.live.is_some())
            && self.doc.is_none()
            && self.page.is_none()
            && self.highlight.is_none()
            && self.mode.is_none()
            && self.notice.is_none()
            && self.ended.is_none()
            && self.marks.is_none()
    }

    /// True when the patch only moves (or hides) the pointer: the bulk of a lesson, logged compactly
    /// and not a change students are expected to follow.
    pub fn is_pointer_only(&self) -> bool {
        self.pos.is_some()
            && self.view.is_none()
            && self.zoom.is_none()
            && self.live.is_none()
            && self.is_motion()
    }
}

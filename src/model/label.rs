//! Labels: admin-defined, coloured tags that agents put on tickets to group
//! work ("refund", "VIP", "bug"). The colour comes from a fixed palette;
//! the stylesheet (`assets/careline.css`, `.label-<colour>`) pairs each
//! with a text colour that stays readable on it (WCAG AA, 4.5:1).

use super::ids::LabelId;

text_enum!(
    /// The palette a label's colour is chosen from.
    LabelColour {
        Grey = "grey",
        Red = "red",
        Orange = "orange",
        Yellow = "yellow",
        Green = "green",
        Teal = "teal",
        Blue = "blue",
        Purple = "purple",
        Pink = "pink",
    }
);

/// One label as it is defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub id: LabelId,
    pub name: String,
    pub colour: LabelColour,
}

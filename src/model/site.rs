//! Sites: the websites that embed the chat widget.

text_enum!(
    /// Where a site's widget sits on its pages.
    WidgetPosition { BottomRight = "bottom-right", BottomLeft = "bottom-left" }
);

impl WidgetPosition {
    /// How an admin reads it.
    pub fn label(self) -> &'static str {
        match self {
            WidgetPosition::BottomRight => "Bottom right",
            WidgetPosition::BottomLeft => "Bottom left",
        }
    }
}

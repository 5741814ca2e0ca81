"""The browser side shared by every page: layout, styles, pinned third-party files, sessions and headers."""

"""Mailboxes, stored raw messages and email templates: built with the mail gateway issue."""

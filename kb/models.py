"""Knowledge base categories and articles: built with the knowledge base issue."""

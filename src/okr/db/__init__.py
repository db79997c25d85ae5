"""Database: engine and session setup, the base model, and the tables, one module per group."""

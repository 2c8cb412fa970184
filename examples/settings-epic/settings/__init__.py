"""A small settings service: roles, permissions and the organisation profile."""

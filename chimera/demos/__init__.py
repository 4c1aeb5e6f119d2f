"""Demos -> canonical tables -> key-moment snapshots -> win probability -> strategy dataset."""

"""Test support shared by every test folder: tiny engines, voices files, the faulty engine, ROS node fixtures."""

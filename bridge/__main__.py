# Guarded, the import too: a process the daemon starts beside it (bridge.daemon.checkers)
# imports this module again under another name, and must neither run the command a second
# time nor load what only the command needs.
if __name__ == "__main__":
    from bridge.cli.main import main

    main()

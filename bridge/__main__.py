from bridge.cli.main import main

# Guarded: a process the daemon starts beside it (bridge.daemon.checkers) imports this module
# again under another name, and must not run the command a second time.
if __name__ == "__main__":
    main()

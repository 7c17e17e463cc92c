from cmosynth.cli import main

raise SystemExit(main())

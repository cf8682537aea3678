// Behaviour of the admin page(s); see app.js for what every page shares.
